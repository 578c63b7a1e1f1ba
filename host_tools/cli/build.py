"""`dmagent build`: the command over firmware_build.bundle (the library does the work).

Prints the size table and where the bundle went; a mismatched firmware version or a
missing board is one readable error line and exit status 2.
"""

import sys

import click
from rich.console import Console

from dmagent.firmware_build.bundle import board_names, build, size_table
from dmagent.firmware_build.mpy import BuildError


@click.command("build")
@click.option("--board", required=True, metavar="NAME", help="one of: %s" % ", ".join(board_names()))
@click.option("--out", type=click.Path(file_okay=False), help="bundle folder (default: build/NAME)")
@click.option("--json", "as_json", is_flag=True, help="print the manifest as JSON instead")
def build_command(board, out, as_json):
    """Build the agent and a board's files into a bundle (.mpy files, manifest, sizes)."""
    try:
        bundle = build(board, out)
    except BuildError as exc:
        Console(stderr=True, highlight=False).print("[red]error:[/] %s" % exc)
        sys.exit(2)
    if as_json:
        import json

        click.echo(json.dumps(dict(bundle.manifest, dir=str(bundle.dir))))
        return
    console = Console(highlight=False)
    console.print(size_table(bundle.manifest))
    console.print("bundle %s for %s in %s (manifest.json; manifest.py to freeze it into firmware)"
                  % (bundle.version, bundle.board, bundle.dir))
