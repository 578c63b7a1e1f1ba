"""Deploy figures on the virtual board: bundle size, first flash and reflash at a line rate;
or, with --noisy N, N flashes of fresh boards on a line with faults injected.

    python -m dmagent.host_tools.bench.flash [--baud 115200] [--board virtual]
    python -m dmagent.host_tools.bench.flash --noisy 10 [--faults SPEC]

The line-rate floor is what the bundle's bytes alone take on the wire (8N1: ten bits a
byte); the flash sends the files deflated where that pays, in base64 (4/3), with the raw
REPL's commands, and waits for answers.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dmagent.firmware_build.bundle import build
from dmagent.host_tools.flash import FlashError, flash
from dmagent.host_tools.client.keys import new_key_file
from dmagent.host_tools.vboard.board import VirtualBoard, ensure_node_runtime
from dmagent.host_tools.paths import DEMO_CONFIG

NOISY = "drop=0.0002,corrupt=0.0002,insert=0.0001"  # about one fault per 2 KB each way


def measure(board="virtual", baud=115200, work=None):
    """Flash a fresh virtual board at baud, then flash it again unchanged; the figures."""
    work = Path(work or tempfile.mkdtemp(prefix="dmagent-flash-bench-"))
    ensure_node_runtime(log=lambda line: None)
    bundle = build(board, work / "bundle")
    total = bundle.manifest["total"]
    key = work / "ServerA.key"
    new_key_file("ServerA", key)
    config = json.loads(DEMO_CONFIG.read_text())
    config["security"] = {"owners": ["ServerA"]}  # ServerA may take the console back
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


def noisy(board="virtual", boards=10, faults=NOISY, work=None):
    """Flash `boards` fresh virtual boards, seeds 1..boards, on a line with faults: per board
    (seed, ok, seconds, retries, error), where ok means every file's hash was verified."""
    work = Path(work or tempfile.mkdtemp(prefix="dmagent-flash-noisy-"))
    ensure_node_runtime(log=lambda line: None)
    bundle = build(board, work / "bundle")
    config = json.loads(DEMO_CONFIG.read_text())
    config["escape_window_ms"] = 300  # keyed: a window only if asked
    runs = []
    for seed in range(1, boards + 1):
        with VirtualBoard(work / ("board-%d" % seed), faults="%s,seed=%d" % (faults, seed)) as vb:
            t = time.monotonic()
            try:
                result = flash(vb.port, bundle, config=config, wait_agent=False)
                runs.append((seed, True, time.monotonic() - t, result.retries, ""))
            except FlashError as exc:
                runs.append((seed, False, time.monotonic() - t, None, exc.message))
    return runs


def _print_noisy(runs, faults):
    table = Table(title="flashing fresh virtual boards, faults %s" % faults)
    for column in ("seed", "verified", "time", "retries", "error"):
        table.add_column(column, justify="left" if column == "error" else "right")
    for seed, ok, seconds, retries, error in runs:
        table.add_row(str(seed), "yes" if ok else "NO", "%.1f s" % seconds,
                      "-" if retries is None else str(retries), error)
    Console(highlight=False).print(table)
    done = [r for r in runs if r[1]]
    if done:
        print("%d of %d verified, %.1f-%.1f s, %d-%d retries" % (
            len(done), len(runs), min(r[2] for r in done), max(r[2] for r in done),
            min(r[3] for r in done), max(r[3] for r in done)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--board", default="virtual")
    parser.add_argument("--noisy", type=int, metavar="N", help="flash N fresh boards on a noisy line")
    parser.add_argument("--faults", default=NOISY, help="the noisy line's faults (default %(default)s)")
    args = parser.parse_args(argv)
    if args.noisy:
        runs = noisy(args.board, args.noisy, args.faults)
        _print_noisy(runs, args.faults)
        return 0 if all(r[1] for r in runs) else 1
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
