"""`dmagent flash`: the command over host_tools.flash (the library does the work, this draws it).

It composes what the flasher must not know: the virtual board's reset button is registered
by importing host_tools.vboard, so `dmagent flash` reaches a virtual board as it does an ESP32.
"""

import sys

import click
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
                           TransferSpeedColumn)
from rich.progress import ProgressColumn
from rich.table import Table
from rich.text import Text

import dmagent.host_tools.vboard.board  # noqa: F401  (registers the virtual board's reset strategy)
from dmagent.host_tools.cli.common import check_device_config, emit_json, fail, json_option, options
from dmagent.host_tools.client.ports import PortError, resolve
from dmagent.host_tools.flash.deploy import flash_many, resolve_bundle
from dmagent.host_tools.flash.errors import FlashError
from dmagent.host_tools.flash.repl import DEFAULT_BAUD


BYTE_STAGES = ("firmware", "write")  # progress in bytes; the other stages count files or steps


class _StageUnits(ProgressColumn):
    """Bytes (with rate and time left) for the stages that move bytes; a count for the others."""

    def __init__(self):
        super().__init__()
        self.columns = (DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())

    def render(self, task):
        if task.description in BYTE_STAGES:
            return Text(" ").join(column.render(task) for column in self.columns)
        return Text("%d/%d" % (task.completed, task.total or 0))


@click.command("flash")
@click.argument("ports", nargs=-1)
@click.option("--board", "board", metavar="NAME", help="build and flash this board (boards/NAME)")
@click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False), help="flash a built bundle folder")
@click.option("--firmware", type=click.Path(dir_okay=False), help="write this MicroPython firmware first (esptool)")
@click.option("--config", type=click.Path(dir_okay=False), help="device config (JSON) over the board's defaults")
@click.option("--key", "keys", multiple=True, type=click.Path(dir_okay=False), help="key file to provision (repeat)")
@click.option("--devid", help="the board's DevId (default: kept, or made from its unique id)")
@click.option("--baud", default=DEFAULT_BAUD, show_default=True)
@click.option("--as", "principal", metavar="SERVERID", help="an owner (security.owners) that may Exec ./DevDetail/Ext/Repl")
@click.option("--no-erase", is_flag=True, help="with --firmware: do not erase the flash first")
@json_option
def flash_command(ports, board, bundle_dir, firmware, config, keys, devid, baud, principal, no_erase):
    """Flash the agent onto one or more MicroPython boards (PORTS: paths, or `auto`)."""
    out = Console(stderr=True, highlight=False)
    opts = options()
    if bool(board) == bool(bundle_dir):
        fail("give --board NAME or --bundle DIR", "`dmagent flash /dev/ttyUSB0 --board esp32`")
    if config:
        check_device_config(config)
    try:
        ports = [resolve(p) for p in (ports or ("auto",))]
        target = resolve_bundle(bundle_dir or board)
    except (PortError, FlashError) as exc:
        fail(getattr(exc, "message", str(exc)), getattr(exc, "hint", None))
    opts.state = ("the flash of %s stopped; a board boots what it had before, unless its files were "
                  "already switched in (they are only once every one is verified): flash again" % ", ".join(ports))
    out.print("flashing %s (%s, .mpy v%s, %d files, %.1f KiB) to %s"
              % (target.version, target.board, target.manifest["mpy"], len(target.files),
                 target.manifest["total"] / 1024, ", ".join(ports)))
    bars = Progress(TextColumn("{task.fields[port]}"), TextColumn("{task.description:<9}"), BarColumn(),
                    _StageUnits(), TimeElapsedColumn(), console=out)
    tasks = {p: bars.add_task("waiting", total=1, port=p) for p in ports}

    def progress_for(port):
        def update(stage, done=0, total=0):
            bars.update(tasks[port], description=stage, completed=done, total=total or 1)
        return update

    with bars:
        results = flash_many(ports, target, firmware, config, keys, progress_for, baud=baud, devid=devid,
                             principal=principal, erase=not no_erase)
    opts.state = None
    if opts.json:
        failed = [r for r in results if not r.ok]
        emit_json(200 if not failed else None, "; ".join("%s: %s" % (r.port, r.error.message) for r in failed) or None,
                  results=[{"port": r.port, "ok": r.ok, "devid": r.devid, "bundle": r.bundle, "sent": len(r.sent),
                            "skipped": len(r.skipped), "bytes_sent": r.bytes_sent, "seconds": round(r.seconds, 2),
                            "error": r.error.message if r.error else None} for r in results])
        sys.exit(0 if not failed else 1)
    table = Table(title="flash summary")
    for col in ("port", "result", "DevId", "sent", "skipped", "time"):
        table.add_column(col)
    for res in results:
        table.add_row(res.port, "[green]ok[/]" if res.ok else "[red]failed[/]", res.devid or "",
                      "%d (%.1f KiB)" % (len(res.sent), res.bytes_sent / 1024), str(len(res.skipped)),
                      "%.1f s" % res.seconds)
    Console(highlight=False).print(table)
    for res in results:
        if res.ok and res.info:
            Console(highlight=False).print("%s: %s %s, agent %s on %s" % (
                res.port, res.info.get("devid"), res.bundle, res.info.get("agent"), res.info.get("runtime")))
        if not res.ok:
            out.print("[red]error:[/] %s" % res.error)
    sys.exit(0 if all(r.ok for r in results) else 1)
