"""Deploy figures on the virtual board: bundle size, first flash and reflash at a line rate.

    python -m host_tools.flash_bench [--baud 115200] [--board virtual]

The line-rate floor is what the bundle's bytes alone take on the wire (8N1: ten bits a
byte); the flash also sends base64 (4/3), the raw REPL's commands, and waits for answers.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from firmware_build.bundle import build
from host_tools.flash import flash
from host_tools.keys import new_key_file
from host_tools.vboard import VirtualBoard, ensure_node_runtime

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "boards" / "unix" / "demo-config.json"


def measure(board="virtual", baud=115200, work=None):
    """Flash a fresh virtual board at baud, then flash it again unchanged; the figures."""
    work = Path(work or tempfile.mkdtemp(prefix="dmagent-flash-bench-"))
    ensure_node_runtime(log=lambda line: None)
    bundle = build(board, work / "bundle")
    total = bundle.manifest["total"]
    key = work / "ServerA.key"
    new_key_file("ServerA", key)
    config = json.loads(DEMO_CONFIG.read_text())  # accounts: ServerA may take the console back
    with VirtualBoard(work / "flash", baud=baud) as vb:
        t = time.monotonic()
        first = flash(vb.port, bundle, config=config, keys=[key], baud=baud)
        first_s = time.monotonic() - t
        t = time.monotonic()
        again = flash(vb.port, bundle, config=config, keys=[key], baud=baud, principal="ServerA")
        again_s = time.monotonic() - t
    return {
        "board": board,
        "baud": baud,
        "files": len(bundle.files),
        "bundle_bytes": total,
        "source_bytes": bundle.manifest["source_total"],
        "floor_s": total * 10.0 / baud,
        "first_s": first_s,
        "first_write_s": first.write_seconds,
        "first_sent": len(first.sent),
        "first_wire_bytes": first.wire_bytes,
        "again_s": again_s,
        "again_sent": len(again.sent),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--board", default="virtual")
    args = parser.parse_args(argv)
    r = measure(args.board, args.baud)
    table = Table(title="deploying the %s bundle at %d baud (virtual board)" % (r["board"], r["baud"]))
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("bundle", "%d files, %.1f KiB (.py sources %.1f KiB)"
                  % (r["files"], r["bundle_bytes"] / 1024, r["source_bytes"] / 1024))
    table.add_row("line-rate floor (bytes x 10 / baud)", "%.1f s" % r["floor_s"])
    table.add_row("first flash, all of it", "%.1f s (%.1fx the floor)" % (r["first_s"], r["first_s"] / r["floor_s"]))
    table.add_row("  of which writing files", "%.1f s; %.1f KiB on the wire"
                  % (r["first_write_s"], r["first_wire_bytes"] / 1024))
    table.add_row("flash again, nothing changed", "%.1f s, %d files sent" % (r["again_s"], r["again_sent"]))
    Console(highlight=False).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
