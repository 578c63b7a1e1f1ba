"""Runs the agent on MicroPython's Unix port (the device runtime), as a board would.

Started by `dmagent serve --runtime micropython`; the same flags as the CPython server.
Links: --tcp HOST:PORT, --serial DEV (a tty opened raw with termios), --stdio (the
launcher hands a pseudo-terminal in as stdin/stdout, like a board's USB console).
"""
import asyncio
import gc
import sys

from agent import frame

USAGE = ("usage: main.py [--tcp HOST:PORT] [--serial DEV[@BAUD]]... [--stdio] [--state DIR]"
         " [--config FILE [--config-checked]] [--keys PATH]... [--insecure]")


def parse_args(argv):
    opts = {"tcp": None, "serial": [], "keys": [], "stdio": False, "state": None, "config": None,
            "insecure": False, "config_checked": False}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--stdio", "--insecure", "--config-checked"):
            opts[arg[2:].replace("-", "_")] = True
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


def links_wanted(opts):
    """How many links to reserve buffers for: each serial line, stdio, one TCP client (a
    second one gets buffers if the heap has them then, else it is refused and logged)."""
    return len(opts["serial"]) + opts["stdio"] + (1 if opts["tcp"] else 0)


try:
    OPTS = parse_args(sys.argv[1:])
except ValueError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)

# First, before imports and boot cut the heap into small pieces: the buffers of the links
# to come (each needs blocks of MAX_FRAME bytes in one piece). What is not served costs
# nothing: on a board's heap a spare 3 KB is a few dozen nodes.
frame.reserve(links_wanted(OPTS))
# A piece kept whole through boot for the first session's key schedules (2 x 304 bytes):
# boot's small objects would cut up the heap, and the first handshake found no 304 bytes in
# one piece with 5 KB free. Given back once booted, before any link is served.
_HELD = [bytearray(1024)]


def load_keys(paths):
    """{principal: key} through the one key-file reader (agent.keys), which leaves the heap
    once they are read; a bad key file is one line naming the file, never the key."""
    if not paths:
        return None
    import agent
    from agent import keys as keyfiles

    try:
        return keyfiles.load(paths)
    except ValueError as exc:  # one line naming the file, never the key
        print("dmagent: %s" % exc, file=sys.stderr)
        sys.exit(2)
    finally:
        agent.unload("agent.keys")


from agent import server  # noqa: E402

server.reserve_reads(links_wanted(OPTS))
from agent.app import App  # noqa: E402


def load_config(path, checked=False):
    """Through the one loader (agent.config): unknown keys and wrong types refused in one line.
    checked: `dmagent serve` has run that loader on this very file already, on the host,
    where the heap is plentiful; here it would cost a board-sized heap what boot can ill
    spare (its code and names, loaded and dropped among the agent's own)."""
    if checked:
        import json

        with open(path) as f:
            return json.load(f)
    import agent
    from agent import config as checker

    try:
        return checker.load(path)
    except checker.ConfigError as exc:
        print("dmagent: %s" % exc, file=sys.stderr)
        sys.exit(2)
    finally:
        agent.unload("agent.config")


async def run(opts):
    keys = load_keys(opts["keys"])
    app = App(load_config(opts["config"], opts["config_checked"]), opts["state"], opts["insecure"], keys=keys)
    _HELD.pop()
    tasks = []
    if opts["tcp"]:
        host, port = opts["tcp"].rsplit(":", 1)
        # Two TCP links unless config says: one, and the one kept for a principal (the
        # second gets buffers if the heap has them then, else it is refused with a status).
        limits = dict(app.link_limits or {})
        limits.setdefault("max", 2)
        await server.serve_tcp(app, host, int(port), limits)
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
    print("dmagent: heap %d bytes in use, %d free; code from %s" % (gc.mem_alloc(), gc.mem_free(), frame.__file__),
          file=sys.stderr)
    print("dmagent: ready", file=sys.stderr)
    while True:
        await asyncio.sleep(3600)


def main():
    asyncio.run(run(OPTS))


main()
