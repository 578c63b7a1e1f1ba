"""`dmagent test`: run the conformance suite (host_tools.conformance) against devices.

Several -d run at once, a progress line each, then one summary; exit 1 if any check
failed, 2 if the suite could not run on a device.
"""

import json
import sys

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from dmagent.host_tools.client.keys import KeyFileError, load_key_file


@click.command("test")
@click.option("-d", "--device", "urls", multiple=True, metavar="URL",
              help="a device to check (repeat for several, run at once); default: the global -d")
@click.option("--key", "key_files", multiple=True, metavar="FILE",
              help="key files: DM servers (the first is p1, the second p2) and gateways")
@click.option("--as", "names", multiple=True, metavar="SERVERID",
              help="without keys (an --insecure agent): the two ServerIDs to name in hello")
@click.option("--junit", type=click.Path(dir_okay=False, writable=True), help="write JUnit XML here")
@click.option("--only", metavar="PATTERN", help="checks whose name or group matches (glob, or a word)")
@click.option("--confidential", multiple=True, metavar="URI", help="the device's confidential subtrees")
@click.option("--ddf", "ddf_file", type=click.Path(exists=True, dir_okay=False),
              help="the device's DDF: check its AccessType and Occurrence too")
@click.option("--list", "list_only", is_flag=True, help="list the checks and stop")
@click.option("-v", "--verbose", is_flag=True, help="print every check, not only failures")
@click.pass_obj
def test_command(ctx, urls, key_files, names, junit, only, confidential, ddf_file, list_only, verbose):
    """Check devices rule by rule against the protocol, OMA DM's rules and the standard objects."""
    from dmagent.host_tools.conformance import report as rep
    from dmagent.host_tools.conformance import run_many, select

    as_json = bool(ctx and ctx.json)
    err = Console(stderr=True, highlight=False)
    checks = select(only)
    if list_only:
        for chk in checks:
            click.echo("%-20s %s" % (chk.group, chk.name))
        return
    if not checks:
        err.print("[red]error:[/] no check matches %r" % only)
        sys.exit(2)
    urls = list(urls) or ([ctx.url] if ctx and ctx.url else [])
    if not urls:
        err.print("[red]error:[/] no device: give -d URL (several for several devices)")
        sys.exit(2)
    keys = []
    for path in key_files or ([ctx.key] if ctx and ctx.key else []):
        try:
            keys.append(load_key_file(path))
        except (KeyFileError, ValueError, OSError) as exc:
            err.print("[red]error:[/] %s" % exc)
            sys.exit(2)
    options = dict(keys=keys, names=list(names) or ["ServerA", "ServerB"], only=only,
                   timeout=(ctx.timeout if ctx else None) or 2.0, confidential=list(confidential), ddf=ddf_file)
    if ddf_file:
        from dmagent.host_tools.ddf import DDFError, read_file

        try:
            read_file(ddf_file)
        except DDFError as exc:
            err.print("[red]error:[/] %s" % exc, markup=True, highlight=False)
            sys.exit(2)
    console = Console(stderr=as_json, highlight=False)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[last]}"), console=console, transient=as_json) as progress:
        tasks = [progress.add_task(url, total=len(checks) + 1, last="") for url in urls]

        def tick(i, done, total, result):
            progress.update(tasks[i], completed=done, total=total,
                            last="%s %s" % (result.outcome, result.name[:50]))

        reports = run_many(urls, progress=tick, **options)
    if junit:
        with open(junit, "w") as f:
            f.write(rep.junit_xml(reports))
    failed = any(r.failed for r in reports)
    broken = any(r.error for r in reports)
    if as_json:
        status = "error" if broken else ("fail" if failed else "pass")
        click.echo(json.dumps({"status": status, "error": next((r.error for r in reports if r.error), None),
                               "devices": rep.as_json(reports)}))
    else:
        rep.print_report(console, reports, verbose)
    sys.exit(2 if broken else 1 if failed else 0)
