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


def _private_files():
    """Every file and folder the agent makes from here on is its owner's alone (0600, 0700):
    the state holds the tree's secrets. The process's umask, so the device runtime (a child)
    and every write of the store have it from the first byte."""
    os.umask(0o077)


# --- recovery from a damaged store ------------------------------------------------
def recover_state(state, config=None, confirm=None, echo=print):
    """`dmagent serve --recover`: load the state folder as the agent would and, if it is
    damaged, say exactly what recovery drops, then (if confirm() says yes) keep the damaged
    journal aside and make the state that loaded the durable one. Runs on CPython whatever
    the runtime that serves next: the files are the same on both. True if it recovered."""
    import cbor2

    from dmagent.agent import repair
    from dmagent.agent.app import App

    if not state:
        raise ServeError("--recover needs --state DIR")
    try:
        app = App(load_config(config), state, True, log=lambda msg: None)
    except ServeError:
        raise
    except Exception as exc:
        raise ServeError("cannot load the state in %s: %s" % (state, exc)) from None
    store = app.store
    if store.damage is None:
        echo("recover: %s holds no damage; nothing to do" % state)
        return False
    echo("recover: %s: %s." % (state, store.damage))
    echo("recover: the state that loads (the snapshot and the records before the damage, "
         "%d nodes) becomes the durable one." % app.tree.node_count())
    if store.damage_at is not None:
        at, before, next_at, after = store.damage_at
        echo("recover: it DROPS the damaged record (bytes %d-%d, unreadable) and the %d good "
             "records after it, each an acknowledged write:" % (at, next_at - 1, after))
        for k, payload in enumerate(repair.records_after_damage(store), before + 2):
            try:
                changes = ", ".join("%s %s" % (r[0], r[1]) for r in cbor2.loads(payload))
            except Exception:  # noqa: BLE001 - shown as bytes then
                changes = "%d bytes, not a list of changes" % len(payload)
            echo("  record %d: %s" % (k, changes))
    echo("recover: journal.bin is kept (renamed journal.damaged), not deleted.")
    if confirm is not None and not confirm():
        raise ServeError("recovery cancelled: nothing changed")
    name = repair.set_aside(store, app.dump_state)
    echo("recover: done%s; the agent writes again." % (" (the old journal is %s)" % name if name else ""))
    return True



# --- CPython runtime -----------------------------------------------------------
def load_keys(paths):
    """{principal: key} through the one key-file reader, which warns of files others may read."""
    from dmagent.host_tools.client.keys import KeyFileError, load_keys as read_keys

    try:
        return read_keys(paths)
    except KeyFileError as exc:
        raise ServeError(str(exc)) from None


def serve_cpython(tcp=None, serial_ports=(), pty=False, state=None, config=None, insecure=False,
                  key_paths=(), verbose=False):
    from dmagent.agent.app import App

    _private_files()
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


# A link's reply bytes not yet taken by its client. Past this the client is not reading:
# its link is dropped, so that it costs nobody else a byte of memory or a moment of the loop.
MAX_PENDING = 64 * 1024


class FdLink:
    """One descriptor (a pty master, a serial port) served from the event loop. Writes never
    block: what the descriptor does not take at once waits in a bounded queue, sent when the
    descriptor is writable again. A link whose queue passes MAX_PENDING is dropped (logged),
    and a fresh one serves whoever reads next."""

    def __init__(self, loop, app, fd, name, read=None):
        self.loop = loop
        self.app = app
        self.fd = fd
        self.name = name
        self.dropped = 0
        self._read = read or self._os_read
        self._pending = bytearray()
        os.set_blocking(fd, False)
        self.link = app.new_link(name, False)
        loop.add_reader(fd, self._on_readable)

    def _os_read(self):
        try:
            return os.read(self.fd, 4096)
        except BlockingIOError:
            return b""
        except OSError:
            return b""  # EIO: no client has the pty's slave open right now; keep serving

    def _on_readable(self):
        data = self._read()
        if data:
            for reply in self.link.receive(data):
                self._send(reply)

    def _send(self, reply):
        if not self._pending:
            n = self._write(reply)
            if n == len(reply):
                return
            reply = memoryview(reply)[n:]
            self.loop.add_writer(self.fd, self._on_writable)
        self._pending += reply  # a copy: the reply is a view of a buffer the next one reuses
        if len(self._pending) > MAX_PENDING:
            self._drop()

    def _write(self, data):
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0
        except OSError:
            return len(data)  # nobody on the other end (a pty without a client): discarded

    def _on_writable(self):
        n = self._write(self._pending)
        del self._pending[:n]
        if not self._pending:
            self.loop.remove_writer(self.fd)

    def _drop(self):
        self.dropped += 1
        self.app.log("link dropped: %s: client not draining (%d reply bytes unsent)"
                     % (self.name, len(self._pending)))
        self._pending = bytearray()
        self.loop.remove_writer(self.fd)
        try:
            import termios

            termios.tcflush(self.fd, termios.TCOFLUSH)  # what the kernel still holds for it
        except (ImportError, OSError):
            pass
        self.link.close()
        self.link = self.app.new_link(self.name, False)

    def close(self):
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        self.link.close()


def _serve_fd(loop, app, fd, name):
    """Serve a raw descriptor from the event loop (a pty master)."""
    return FdLink(loop, app, fd, name)


def _serve_serial(loop, app, dev, baud):
    import serial

    try:
        ser = serial.serial_for_url(dev, baudrate=baud, timeout=0, exclusive=True)
    except serial.SerialException as exc:
        raise ServeError("cannot open serial port %s: %s" % (dev, exc)) from None

    def read():
        try:
            return ser.read(ser.in_waiting or 1)
        except serial.SerialException:
            return b""

    return ser, FdLink(loop, app, ser.fileno(), "serial " + dev, read)


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
                      heap=mpy_runtime.DEFAULT_HEAP, key_paths=(), bundle=None, runtime=mpy_runtime.MPY):
    """bundle: run a built bundle's .mpy files (what `dmagent flash` would put on a board)
    instead of the agent compiled from this checkout. runtime: mpy_runtime.MPY or FROZEN."""
    args = []
    _private_files()  # the runtime inherits it
    load_keys(key_paths)  # fail here, readably, not inside MicroPython
    for path in key_paths:
        args += ["--keys", mpy_runtime.short_path(path)]
    if tcp:
        host, port = split_hostport(tcp)
        if port == 0:
            raise ServeError("--runtime %s needs a fixed TCP port (not 0)" % runtime)
        args += ["--tcp", "%s:%d" % (host, port)]
    for spec in serial_ports:
        args += ["--serial", spec]
    if state:
        Path(state).mkdir(parents=True, exist_ok=True)
        args += ["--state", mpy_runtime.short_path(state)]
    if config:
        load_config(config)  # fail here, readably, not inside MicroPython
        args += ["--config", mpy_runtime.short_path(config), "--config-checked"]
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
                                 stderr=subprocess.PIPE, text=True, paths=paths, compiled=not bundle,
                                 runtime=runtime)
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
