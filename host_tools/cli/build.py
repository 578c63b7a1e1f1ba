"""`dmagent build`: the command over firmware_build.bundle (the library does the work).

Prints the size table and where the bundle went; a mismatched firmware version, a missing
board or a firmware build without its tools is one readable error line and exit status 2.
"""

import click
from rich.console import Console

from dmagent.host_tools.cli.common import emit_json, fail, json_option, options
from dmagent.firmware_build.bundle import board_names, build, size_table
from dmagent.firmware_build.mpy import BuildError


@click.command("build")
@click.option("--board", required=True, metavar="NAME", help="one of: %s" % ", ".join(board_names()))
@click.option("--out", type=click.Path(file_okay=False), help="bundle folder (default: build/NAME)")
@click.option("--firmware", is_flag=True,
              help="also build MicroPython firmware with the agent frozen in (unix here; esp32 with ESP-IDF)")
@json_option
def build_command(board, out, firmware):
    """Build the agent and a board's files into a bundle (.mpy files, manifest, sizes)."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)  # one line, however long
    try:
        if firmware:
            from dmagent.firmware_build.firmware import build_firmware

            bundle = build_firmware(board, out, log=lambda line: err.print(line))
        else:
            bundle = build(board, out)
    except BuildError as exc:
        fail(str(exc))
    if options().json:
        emit_json(200, None, **dict(bundle.manifest, dir=str(bundle.dir)))
        return
    console = Console(highlight=False)
    console.print(size_table(bundle.manifest))
    rom = bundle.manifest.get("romfs")
    if rom:
        console.print("ROMFS image %s: %d bytes of its %d-byte partition (%d files, mounted at %s)"
                      % (bundle.romfs_image, rom["size"], rom["partition_bytes"], len(rom["files"]), rom["mount"]))
    fw = bundle.manifest.get("firmware_file")
    if fw:
        console.print("firmware %s: %d bytes (MicroPython %s port, agent frozen)"
                      % (bundle.dir / fw["path"], fw["size"], fw["port"]))
    console.print("bundle %s for %s in %s (manifest.json; manifest.py to freeze it into firmware)"
                  % (bundle.version, bundle.board, bundle.dir))
