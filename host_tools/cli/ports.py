"""`dmagent ports`: the serial ports and a guess at the board on each (host_tools/client/ports)."""

import sys

import click
from rich.console import Console
from rich.table import Table

from dmagent.host_tools.cli.common import emit_json, json_option, options
from dmagent.host_tools.client.ports import PortError, list_ports, pick


@click.command("ports")
@click.option("--all", "include_all", is_flag=True, help="also ports without USB ids (built-in UARTs)")
@json_option
def ports_command(include_all):
    """List serial ports, with a guess at the board on each."""
    ports = list_ports(include_all=include_all)
    if options().json:
        emit_json(200, None, ports=[p.as_dict() for p in ports])
        return
    console = Console(highlight=False)
    if not ports:
        console.print("no serial ports with USB ids%s" % ("" if include_all else " (--all lists every port)"))
        sys.exit(1)
    table = Table()
    for col in ("port", "VID:PID", "description", "board (a guess)"):
        table.add_column(col)
    for p in ports:
        table.add_row(p.device, p.usb_id, p.description or p.bridge or "",
                      p.board or "", style=None if p.likely else "dim")
    console.print(table)
    try:
        console.print("--port auto picks %s" % pick(ports))
    except PortError as exc:
        console.print("--port auto: %s" % exc)
