"""`dmagent ddf import FILE.xml` and `dmagent ddf export`: over host_tools.ddf. A bad DDF is
one line, FILE:LINE:COLUMN: what is wrong, and exit 2.
"""

import json
import sys

import click


def _fail(text):
    click.echo("error: %s" % text, err=True)  # one line, never wrapped: editors jump to FILE:LINE:COL
    sys.exit(2)


@click.group("ddf")
def ddf_group():
    """OMA DM Device Description Framework files: import into a config, export a tree."""


@ddf_group.command("import")
@click.argument("ddf_file", metavar="FILE.xml", type=click.Path(dir_okay=False))
@click.option("--into", type=click.Path(dir_okay=False), help="merge the nodes into this config (JSON)")
@click.option("--out", type=click.Path(dir_okay=False), help="write the config here (default: stdout)")
def ddf_import(ddf_file, into, out):
    """Turn a DDF into the initial-tree `nodes` of a device config (docs/config.md)."""
    from dmagent.host_tools.ddf import DDFError, read_file, to_config

    try:
        nodes = to_config(read_file(ddf_file))["nodes"]
    except DDFError as exc:
        _fail(str(exc))
    config = {}
    if into:
        try:
            with open(into) as f:
                config = json.load(f)
        except (OSError, ValueError) as exc:
            _fail("cannot read %s: %s" % (into, exc))
    config.setdefault("nodes", []).extend(nodes)
    text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


@ddf_group.command("export")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="a config's nodes, not a device")
@click.option("--root", default=".", show_default=True, help="the subtree to describe")
@click.option("--out", type=click.Path(dir_okay=False), help="write the DDF here (default: stdout)")
@click.pass_obj
def ddf_export(ctx, config_file, root, out):
    """Write a DDF of the live tree (-d URL), or of a config's nodes (--config)."""
    from dmagent.host_tools.ddf import DDFError, from_config, from_device, to_ddf

    try:
        if config_file:
            with open(config_file) as f:
                text = to_ddf(from_config(json.load(f)))
        else:
            from dmagent.host_tools.client.device import DeviceError, LinkError

            try:
                with ctx.open() as dev:
                    man = dev.get("./DevInfo/Man") if root == "." else None
                    text = to_ddf(from_device(dev, root), man=man)
            except (DeviceError, LinkError) as exc:
                _fail(str(exc))
    except (OSError, ValueError, DDFError) as exc:
        _fail(str(exc))
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)
