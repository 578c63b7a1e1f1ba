"""`dmagent vboard`: run a virtual MicroPython board (host_tools/vboard) until killed, or press
the reset button of one that runs; `python -m dmagent.host_tools.vboard ensure` sets up its Node.js packages.
"""

import signal
import sys
import threading
from pathlib import Path

import click

from dmagent.host_tools.vboard.board import (Faults, VboardError, VirtualBoard, default_dir, ensure_node_runtime,
                                     js_dir, press_reset)


@click.command("vboard")
@click.option("--dir", "folder", type=click.Path(file_okay=False), default=None,
              help="the board's file system (a host folder, kept across resets and restarts) "
                   "[default: .cache/vboard]")
@click.option("--baud", type=click.IntRange(min=1), default=None,
              help="carry at most this many bits/s each way (8N1) [default: no limit]")
@click.option("--faults", metavar="SPEC", default=None,
              help="line faults, e.g. drop=0.001,corrupt=0.001,insert=0.0005,seed=1 (dir=in|out|both)")
@click.option("--reset", "reset_port", metavar="PORT", default=None,
              help="press the reset button of the virtual board on PORT (a power cycle), then exit")
def vboard_command(folder, baud, faults, reset_port):
    """Run a virtual MicroPython board; print its serial port's path, then serve until killed."""
    if reset_port:
        if not press_reset(reset_port):
            raise click.ClickException("no virtual board on %s (is `dmagent vboard` still running?)"
                                       % reset_port)
        click.echo("reset %s" % reset_port)
        return
    try:
        spec = Faults.parse(faults)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    folder = Path(folder) if folder else default_dir()

    def log(line):
        click.echo(line, err=True)

    try:
        ensure_node_runtime(log=log)
        board = VirtualBoard(folder, baud=baud, faults=spec, log=log)
        board.start(wait_ready=False)
    except VboardError as exc:
        click.echo("vboard: %s" % exc, err=True)
        sys.exit(1)
    click.echo(board.port)
    sys.stdout.flush()
    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        while not stopping.wait(0.2):
            if not board.running:
                click.echo("vboard: the board's process ended", err=True)
                sys.exit(1)
    finally:
        board.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
    click.echo("vboard: stopped; its flash (%s) keeps everything written to it" % folder, err=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ensure"]:
        try:
            if not ensure_node_runtime():
                print("virtual board: Node.js packages up to date (%s)" % js_dir())
        except VboardError as exc:
            print("setup: %s" % exc, file=sys.stderr)
            return 1
        return 0
    return vboard_command.main(args=argv, prog_name="python -m dmagent.host_tools.vboard")


if __name__ == "__main__":
    sys.exit(main())
