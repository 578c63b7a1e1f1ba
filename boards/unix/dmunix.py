"""The agent on MicroPython's Unix port (the device runtime, the frozen firmware), as a board runs it.

main.py calls main(), which boots and leaves, then runs the event loop; `dmagent serve
--runtime micropython[-frozen]` starts it with the CPython server's flags. Links: --tcp
HOST:PORT, --serial DEV (a tty opened raw with termios), --stdio (the launcher hands a
pseudo-terminal in as stdin/stdout, like a board's USB console). A module, not main.py's
body, so that its code is .mpy or frozen, not compiled into the heap at each start.
"""
import asyncio
import sys

from agent import frame, startup

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


def secrets(state):
    """The device key's store, for key files wrapped on a board: a file in the state folder.
    Key files given by --keys are the operator's: read as they are, never rewritten."""
    if not state:
        return None
    from agent.keywrap import FileSecrets

    return FileSecrets(state + "/secrets")


def boot(opts):
    """The agent from the command line's config, state and keys; then the start-up module
    leaves the heap. Nothing here keeps the config: the App drops it after boot. A bad
    config or key file is one line naming the file (never the key), and exit 2."""
    global startup
    try:
        config = startup.load_config(opts["config"], opts["config_checked"]) if opts["config"] else {}
        keys = None
        if opts["keys"]:  # before the agent boots: plain files need no crypto code, and the
            # key reader's code then leaves a hole that boot fills (after boot: a hole among
            # the tree's objects, and a 110k heap too cut up for a handshake)
            from agent import keys as keyfiles

            keys = keyfiles.load(opts["keys"], secrets=lambda: secrets(opts["state"]))
    except ValueError as exc:  # ConfigError is one too
        print("dmagent: %s" % exc, file=sys.stderr)
        sys.exit(2)
    app = startup.make_app(config, opts["state"], keys, None, opts["insecure"])
    startup = None
    import agent

    agent.unload("agent.keys")
    agent.unload("agent.startup")
    return app


async def start_links(app, opts):
    """The links the command line asks for: the TCP server listening, each serial line and
    stdio a task. They serve once main.py runs the event loop."""
    from agent import server, tty  # server: main() imported it before boot; tty: boot-only

    if opts["tcp"]:
        host, port = opts["tcp"].rsplit(":", 1)
        # Two TCP links unless config says: one, and the one kept for a principal (the
        # second gets buffers if the heap has them then, else it is refused with a status).
        limits = dict(app.link_limits or {})
        limits.setdefault("max", 2)
        await server.serve_tcp(app, host, int(port), limits)
    for spec in opts["serial"]:
        dev, _, baud = spec.partition("@")
        stream = asyncio.StreamReader(tty.open_tty(dev, int(baud or 115200)))  # reads and writes
        asyncio.create_task(server.serve_stream(app, stream, stream, "serial " + dev))
    if opts["stdio"]:
        try:
            tty.make_raw(0)
        except Exception:
            pass  # not a tty: a pipe needs no raw mode
        stream = asyncio.StreamReader(sys.stdin.buffer)
        asyncio.create_task(server.serve_stream(app, stream, stream, "stdio"))
    import agent

    agent.unload("agent.tty")  # the links are open: its code leaves the heap


async def report(code_from):
    """The heap in use once serving (this module gone, so the figure is what serves), then
    ready. Imports its own modules: the module's globals are gone by the time it runs."""
    import gc
    import sys

    gc.collect()
    print("dmagent: heap %d bytes in use, %d free; code from %s" % (gc.mem_alloc(), gc.mem_free(), code_from),
          file=sys.stderr)
    print("dmagent: ready", file=sys.stderr)


def main():
    """Parse the command line (a mistake: one line, exit 2), reserve the links' buffers, boot,
    start the links; then this module leaves the heap and main.py runs the event loop."""
    try:
        opts = parse_args(sys.argv[1:])
    except ValueError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    # First, before imports and boot cut the heap into small pieces: the buffers of the links
    # to come (each needs blocks of MAX_FRAME bytes in one piece). What is not served costs
    # nothing: on a board's heap a spare 3 KB is a few dozen nodes.
    startup.reserve(links_wanted(opts))
    # A piece kept whole through boot for the first session's key schedules (2 x 304 bytes):
    # boot's small objects would cut up the heap, and the first handshake found no 304 bytes in
    # one piece with 5 KB free. Given back once booted, before any link is served.
    held = bytearray(1024)
    import agent.server  # noqa: F401  the agent's code next, before config and keys
    import agent.app  # noqa: F401

    app = boot(opts)
    del held
    asyncio.get_event_loop().run_until_complete(start_links(app, opts))
    asyncio.create_task(report(frame.__file__))
    # Boot is over: this module leaves sys.modules, and its globals go with it (as .mpy, its
    # code is in the heap; a function's globals are its module's, so report's would keep
    # them all). main.py drops its name for the module; what serves is the agent's.
    del sys.modules[__name__]
    globals().clear()
