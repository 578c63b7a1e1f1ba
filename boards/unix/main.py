"""Runs the agent on MicroPython's Unix port (the device runtime), as a board would.

Started by `dmagent serve --runtime micropython`; the same flags as the CPython server.
Links: --tcp HOST:PORT, --serial DEV (a tty opened raw with termios), --stdio (the
launcher hands a pseudo-terminal in as stdin/stdout, like a board's USB console).
"""
import asyncio
import gc
import json
import sys

from agent import frame

# First, before imports and boot cut the heap into small pieces: receive buffers for the
# links to come (each needs MAX_FRAME bytes in one piece).
frame.reserve(2)

from agent import server  # noqa: E402

server.reserve_reads(2)
from agent.app import App  # noqa: E402

USAGE = ("usage: main.py [--tcp HOST:PORT] [--serial DEV[@BAUD]]... [--stdio] [--state DIR]"
         " [--config FILE] [--keys PATH]... [--insecure]")


def parse_args(argv):
    opts = {"tcp": None, "serial": [], "keys": [], "stdio": False, "state": None, "config": None,
            "insecure": False}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--stdio", "--insecure"):
            opts[arg[2:]] = True
            i += 1
            continue
        if arg not in ("--tcp", "--serial", "--keys", "--state", "--config") or i + 1 >= len(argv):
            raise ValueError("bad argument %r\n%s" % (arg, USAGE))
        if arg in ("--serial", "--keys"):
            opts[arg[2:]].append(argv[i + 1])
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
    keys = None
    if opts["keys"]:
        from agent import keys as keyfiles

        keys = keyfiles.load(opts["keys"])
    app = App(load_config(opts["config"]), opts["state"], opts["insecure"], keys=keys)
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
            server.make_raw(0)
        except Exception:
            pass  # not a tty: a pipe needs no raw mode
        tasks.append(asyncio.create_task(server.serve_file(app, sys.stdin.buffer, "stdio")))
    gc.collect()
    print("dmagent: heap %d bytes in use, %d free" % (gc.mem_alloc(), gc.mem_free()), file=sys.stderr)
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
