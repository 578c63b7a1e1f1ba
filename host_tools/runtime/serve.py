"""`dmagent serve`: run the agent under CPython, or launch it on the MicroPython device runtime.

Both runtimes get the same links: TCP, serial ports (pyserial under CPython, termios under
MicroPython), and a fresh pseudo-terminal whose path is printed for clients to open.
Once serving, one line per link `serving URL` goes to stdout; logs go to stderr.
"""

import asyncio
import os
import signal
import subprocess
import sys
import tty
from pathlib import Path

from dmagent.host_tools.runtime import micropython as mpy_runtime

BOARD_MAIN = mpy_runtime.REPO_ROOT / "boards" / "unix" / "main.py"


class ServeError(Exception):
    pass


def load_config(path):
    from dmagent.host_tools.config import ConfigError, read_device_config

    if not path:
        return {}
    try:
        return read_device_config(path)
    except ConfigError as exc:
        raise ServeError(str(exc)) from None


def split_hostport(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ServeError("--tcp wants HOST:PORT, got %r" % text)
    return host or "127.0.0.1", int(port)


def _announce(line):
    print(line, flush=True)


def _open_pty():
    """A new pseudo-terminal: (master fd, slave path). The slave is raw, like a UART."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    return master, slave, path


# --- CPython runtime -----------------------------------------------------------
def load_keys(paths):
    from dmagent.agent import keys

    try:
        return keys.load([str(p) for p in paths])
    except ValueError as exc:
        raise ServeError(str(exc)) from None


def serve_cpython(tcp=None, serial_ports=(), pty=False, state=None, config=None, insecure=False,
                  key_paths=(), verbose=False):
    from dmagent.agent.app import App

    keys = load_keys(key_paths)
    try:
        app = App(load_config(config), state, insecure, keys=keys)
    except ServeError:
        raise
    except Exception as exc:  # a bad state folder or config must not give a traceback
        raise ServeError("cannot start the agent: %s" % exc) from None
    if verbose:  # `serve -v`: a line per request
        from dmagent.host_tools.runtime.trace import log_requests

        log_requests(app)
    asyncio.run(_serve_cpython(app, tcp, serial_ports, pty))


async def _serve_cpython(app, tcp, serial_ports, pty):
    from dmagent.agent import server

    loop = asyncio.get_running_loop()
    keep = []
    if tcp:
        host, port = split_hostport(tcp)
        try:
            srv = await server.serve_tcp(app, host, port)
        except OSError as exc:
            raise ServeError("cannot listen on %s:%d: %s" % (host, port, exc.strerror)) from None
        port = srv.sockets[0].getsockname()[1]
        keep.append(srv)
        _announce("serving tcp://%s:%d" % (host, port))
    for spec in serial_ports:
        dev, _, baud = spec.partition("@")
        keep.append(_serve_serial(loop, app, dev, int(baud or 115200)))
        _announce("serving serial://%s" % dev)
    if pty:
        master, slave, path = _open_pty()
        keep.append((slave, _serve_fd(loop, app, master, "pty " + path)))
        _announce("serving %s" % path)
    if not keep:
        raise ServeError("nothing to serve: give --tcp, --serial or --pty")
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    app.log("stopping")


def _serve_fd(loop, app, fd, name):
    """Serve a raw descriptor from the event loop (a pty master)."""
    os.set_blocking(fd, False)
    link = app.new_link(name, False)

    def on_readable():
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: no client has the slave open right now; keep serving
        if not data:
            return
        for reply in link.receive(data):
            _write_all(fd, reply)

    loop.add_reader(fd, on_readable)
    return link


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            import select

            select.select([], [fd], [], 1.0)
            continue
        view = view[n:]


def _serve_serial(loop, app, dev, baud):
    import serial

    try:
        ser = serial.serial_for_url(dev, baudrate=baud, timeout=0, exclusive=True)
    except serial.SerialException as exc:
        raise ServeError("cannot open serial port %s: %s" % (dev, exc)) from None
    link = app.new_link("serial " + dev, False)

    def on_readable():
        data = ser.read(ser.in_waiting or 1)
        if data:
            for reply in link.receive(data):
                ser.write(reply)

    loop.add_reader(ser.fileno(), on_readable)
    return ser


# --- MicroPython device runtime --------------------------------------------------
def bundle_lib(bundle):
    """The folder of a built bundle's .mpy files (its /lib), checked against its manifest."""
    from dmagent.firmware_build.bundle import Bundle
    from dmagent.firmware_build.mpy import BuildError

    try:
        built = Bundle.load(bundle)
        built.check()
    except BuildError as exc:
        raise ServeError(str(exc)) from None
    return built.lib_dir


def serve_micropython(tcp=None, serial_ports=(), pty=False, state=None, config=None, insecure=False,
                      heap=mpy_runtime.DEFAULT_HEAP, key_paths=(), bundle=None):
    """bundle: run a built bundle's .mpy files (what `dmagent flash` would put on a board)
    instead of the agent compiled from this checkout."""
    args = []
    load_keys(key_paths)  # fail here, readably, not inside MicroPython
    for path in key_paths:
        args += ["--keys", mpy_runtime.short_path(path)]
    if tcp:
        host, port = split_hostport(tcp)
        if port == 0:
            raise ServeError("--runtime micropython needs a fixed TCP port (not 0)")
        args += ["--tcp", "%s:%d" % (host, port)]
    for spec in serial_ports:
        args += ["--serial", spec]
    if state:
        Path(state).mkdir(parents=True, exist_ok=True)
        args += ["--state", mpy_runtime.short_path(state)]
    if config:
        load_config(config)  # fail here, readably, not inside MicroPython
        args += ["--config", mpy_runtime.short_path(config)]
    if insecure:
        args.append("--insecure")
    stdin = stdout = None
    path = None
    if pty:
        master, slave, path = _open_pty()
        # Non-blocking is a property of the open file, so the agent inherits it: MicroPython's
        # read(n) then returns what has arrived instead of waiting for all n bytes.
        os.set_blocking(master, False)
        args.append("--stdio")
        stdin = stdout = master
    if not (tcp or serial_ports or pty):
        raise ServeError("nothing to serve: give --tcp, --serial or --pty")
    try:
        paths = [bundle_lib(bundle)] if bundle else ()
        proc = mpy_runtime.spawn(BOARD_MAIN, heap=heap, args=args, stdin=stdin, stdout=stdout,
                                 stderr=subprocess.PIPE, text=True, paths=paths, compiled=not bundle)
    except mpy_runtime.RuntimeMissing as exc:
        raise ServeError(str(exc)) from None
    # Forward the agent's log; announce once it says it is ready.
    for line in proc.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        if line.strip() == "dmagent: ready":
            break
    else:
        raise ServeError("the agent on MicroPython exited with code %s" % proc.wait())
    if tcp:
        _announce("serving tcp://%s:%d" % split_hostport(tcp))
    for spec in serial_ports:
        _announce("serving serial://%s" % spec.partition("@")[0])
    if path:
        _announce("serving %s" % path)

    stopped = []

    def stop(*_):
        stopped.append(True)
        proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for line in proc.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
    code = proc.wait()
    return 0 if stopped else code  # stopped as asked: not a failure
