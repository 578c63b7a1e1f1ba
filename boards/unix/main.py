"""Runs the agent on MicroPython's Unix port (the device runtime), as a board would.

Started by `dmagent serve --runtime micropython`; the same flags as the CPython server.
Links: --tcp HOST:PORT, --serial DEV (a tty opened raw with termios), --stdio (the
launcher hands a pseudo-terminal in as stdin/stdout, like a board's USB console).
"""
import asyncio
import json
import sys

from agent import server
from agent.app import App

USAGE = "usage: main.py [--tcp HOST:PORT] [--serial DEV[@BAUD]]... [--stdio] [--state DIR] [--config FILE] [--insecure]"


def parse_args(argv):
    opts = {"tcp": None, "serial": [], "stdio": False, "state": None, "config": None, "insecure": False}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--stdio", "--insecure"):
            opts[arg[2:]] = True
            i += 1
            continue
        if arg not in ("--tcp", "--serial", "--state", "--config") or i + 1 >= len(argv):
            raise ValueError("bad argument %r\n%s" % (arg, USAGE))
        if arg == "--serial":
            opts["serial"].append(argv[i + 1])
        else:
            opts[arg[2:]] = argv[i + 1]
        i += 2
    return opts


def load_config(path):
    if not path:
        return {}
    with open(path) as f:
        return json.load(f)


async def run(opts):
    app = App(load_config(opts["config"]), opts["state"], opts["insecure"])
    tasks = []
    if opts["tcp"]:
        host, port = opts["tcp"].rsplit(":", 1)
        await server.serve_tcp(app, host, int(port))
    for spec in opts["serial"]:
        dev, _, baud = spec.partition("@")
        f = server.open_tty(dev, int(baud or 115200))
        tasks.append(asyncio.create_task(server.serve_file(app, f, "serial " + dev)))
    if opts["stdio"]:
        try:
            server.termios.setraw(0)
        except Exception:
            pass  # not a tty: a pipe needs no raw mode
        tasks.append(asyncio.create_task(server.serve_file(app, sys.stdin.buffer, "stdio")))
    print("dmagent: ready", file=sys.stderr)
    while True:
        await asyncio.sleep(3600)


def main():
    try:
        opts = parse_args(sys.argv[1:])
    except ValueError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    asyncio.run(run(opts))


main()
