"""`dmagent build`: the command over firmware_build.bundle (the library does the work).

Prints the size table and where the bundle went; a mismatched firmware version or a
missing board is one readable error line and exit status 2.
"""

import click
from rich.console import Console

from dmagent.host_tools.cli.common import emit_json, fail, json_option, options
from dmagent.firmware_build.bundle import board_names, build, size_table
from dmagent.firmware_build.mpy import BuildError


@click.command("build")
@click.option("--board", required=True, metavar="NAME", help="one of: %s" % ", ".join(board_names()))
@click.option("--out", type=click.Path(file_okay=False), help="bundle folder (default: build/NAME)")
@json_option
def build_command(board, out):
    """Build the agent and a board's files into a bundle (.mpy files, manifest, sizes)."""
    try:
        bundle = build(board, out)
    except BuildError as exc:
        fail(str(exc))
    if options().json:
        emit_json(200, None, **dict(bundle.manifest, dir=str(bundle.dir)))
        return
    console = Console(highlight=False)
    console.print(size_table(bundle.manifest))
    console.print("bundle %s for %s in %s (manifest.json; manifest.py to freeze it into firmware)"
                  % (bundle.version, bundle.board, bundle.dir))
