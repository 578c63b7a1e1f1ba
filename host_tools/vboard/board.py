"""The virtual board: MicroPython (the pinned WebAssembly build) behind a pseudo-terminal.

A Node.js program (host_tools/vboard/js/board.mjs) runs the interpreter and speaks a
board's console protocol on its stdin/stdout: friendly and raw REPL, raw-paste, Ctrl-C,
Ctrl-D soft reset then boot.py and main.py, a file system kept in a host folder. This module
puts a pseudo-terminal in front of it and carries the bytes between the two, like the wire
between a board and a USB-serial adapter: at an optional baud rate, with optional line
faults (bytes dropped, corrupted or inserted at given rates, seeded). pyserial, mpremote and
the host tools open the pty's path as they would a real port.

Library: ``with VirtualBoard(folder, baud=None, faults=None) as board: ... board.port ...``;
``board.restart()`` is a power cycle (the Node process is killed and started again; the
folder is the flash and keeps everything written before the cut); ``press_reset(port)``
does the same from any process, as an ESP32 dev board's RTS line resets it.
CLI (host_tools/cli/vboard.py): ``dmagent vboard [--dir DIR] [--baud N] [--faults SPEC]`` prints
the port's path on its first line and runs until killed.

Setup: ``ensure_node_runtime()`` runs ``npm ci`` in host_tools/vboard/js when its
node_modules is missing or older than its package-lock.json.
"""

import hashlib
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import tty
from pathlib import Path

from dmagent.host_tools.flash.repl import register_reset
from dmagent.host_tools.paths import IN_CLONE, VBOARD_JS, cache_dir

JS_SOURCE = VBOARD_JS  # board.mjs and the rest, package.json, package-lock.json (never node_modules)
RUNTIME_PACKAGE = "@micropython/micropython-webassembly-pyscript"
STAMP_NAME = ".dmagent-npm-ci"
MIN_NODE = 18
DEFAULT_HEAP = 110 * 1024  # the first heap chunk; the build grows it on demand (no cap)


class VboardError(RuntimeError):
    """The virtual board could not be set up or started; the message says why."""


# --- setup -----------------------------------------------------------------------------------
def _lock_digest():
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((JS_SOURCE / name).read_bytes())
    return h.hexdigest()


def _sources():
    return sorted(p for p in JS_SOURCE.iterdir() if p.is_file())


def js_dir():
    """Where the board's JavaScript runs (and npm ci puts node_modules): its own folder in a
    clone; installed, a copy in the user's cache folder, since site-packages may not be
    writable. The copy is named after its sources' hash, so an upgrade makes a new one."""
    if IN_CLONE:
        return JS_SOURCE
    h = hashlib.sha256()
    for path in _sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    target = cache_dir() / ("vboard-js-" + h.hexdigest()[:16])
    if not (target / ".copied").exists():
        target.mkdir(parents=True, exist_ok=True)
        for path in _sources():
            shutil.copyfile(path, target / path.name)
        (target / ".copied").write_text("from %s\n" % JS_SOURCE)
    return target


def node_path():
    """The `node` to run the board with (DMAGENT_NODE overrides); raises VboardError."""
    node = os.environ.get("DMAGENT_NODE") or shutil.which("node")
    if not node:
        raise VboardError(
            "Node.js not found: the virtual board needs Node.js %d+ and npm "
            "(Debian/Ubuntu: apt-get install nodejs npm)" % MIN_NODE
        )
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
        major = int(out.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        raise VboardError("cannot run %s --version" % node) from None
    if major < MIN_NODE:
        raise VboardError("Node.js %s is too old: the virtual board needs %d+" % (out.strip(), MIN_NODE))
    return node


def ensure_node_runtime(log=print):
    """Install the board's pinned npm packages unless they are there already (idempotent).

    Runs ``npm ci`` in js_dir() when node_modules is missing or was installed
    from another package-lock.json (a stamp file in node_modules records which).
    Raises VboardError with a readable message when node or npm are missing or npm fails.
    """
    node_path()
    digest = _lock_digest()
    where = js_dir()
    stamp = where / "node_modules" / STAMP_NAME
    installed = where / "node_modules" / RUNTIME_PACKAGE / "micropython.mjs"
    try:
        if installed.exists() and stamp.read_text().strip() == digest:
            return False
    except OSError:
        pass
    npm = shutil.which("npm")
    if not npm:
        raise VboardError("npm not found: the virtual board needs it once, to install its pinned "
                          "packages (Debian/Ubuntu: apt-get install npm)")
    log("setup: installing the virtual board's pinned Node.js packages (npm ci in %s)" % where)
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=str(where), capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise VboardError("npm ci failed in %s:\n%s" % (where, (proc.stderr or proc.stdout).strip()))
    stamp.write_text(digest + "\n")
    return True


def default_dir():
    return cache_dir() / "vboard"


# --- the line: baud rate and faults -----------------------------------------------------------
class Faults:
    """Line faults: each byte is dropped, corrupted, and/or followed by an inserted byte
    with the given probabilities, from a seeded generator (the same seed and the same bytes
    give the same faults). ``direction``: "both", "in" (host to board) or "out"."""

    KEYS = ("drop", "corrupt", "insert", "seed", "dir")

    def __init__(self, drop=0.0, corrupt=0.0, insert=0.0, seed=0, direction="both"):
        for name, p in (("drop", drop), ("corrupt", corrupt), ("insert", insert)):
            if not 0.0 <= p <= 1.0:
                raise ValueError("%s rate must be between 0 and 1, got %r" % (name, p))
        if direction not in ("both", "in", "out"):
            raise ValueError("dir must be both, in or out, got %r" % direction)
        self.drop, self.corrupt, self.insert = float(drop), float(corrupt), float(insert)
        self.seed = seed
        self.direction = direction

    @classmethod
    def parse(cls, spec):
        """'drop=0.001,corrupt=0.001,insert=0.0005,seed=1[,dir=in|out|both]' -> Faults."""
        if isinstance(spec, Faults) or spec is None:
            return spec
        kw = {}
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in cls.KEYS:
                raise ValueError("bad fault %r: use drop=P,corrupt=P,insert=P,seed=N,dir=both|in|out" % part)
            try:
                if key == "seed":
                    kw["seed"] = int(value)
                elif key == "dir":
                    kw["direction"] = value.strip()
                else:
                    kw[key] = float(value)
            except ValueError:
                raise ValueError("bad value in %r" % part) from None
        return cls(**kw)

    def applies_to(self, direction):
        return self.direction in ("both", direction) and (self.drop or self.corrupt or self.insert)

    def __repr__(self):
        return "Faults(drop=%g, corrupt=%g, insert=%g, seed=%r, direction=%r)" % (
            self.drop, self.corrupt, self.insert, self.seed, self.direction)


class _FaultyLine:
    """Applies Faults to one direction's byte stream; counts what it did."""

    def __init__(self, faults, direction):
        self.f = faults
        self.rng = random.Random("%s/%s" % (faults.seed, direction))
        self.stats = {"bytes": 0, "dropped": 0, "corrupted": 0, "inserted": 0}

    def apply(self, data):
        f, rnd, st = self.f, self.rng.random, self.stats
        out = bytearray()
        for b in data:
            # three draws per byte whatever happens, so faults depend only on position
            d, c, i = rnd(), rnd(), rnd()
            st["bytes"] += 1
            if d < f.drop:
                st["dropped"] += 1
            else:
                if c < f.corrupt:
                    b ^= self.rng.randrange(1, 256)
                    st["corrupted"] += 1
                out.append(b)
            if i < f.insert:
                out.append(self.rng.randrange(256))
                st["inserted"] += 1
        return bytes(out)


class _Pump(threading.Thread):
    """Carries one direction: read src, apply faults, pace to the baud rate, write dst."""

    def __init__(self, name, src, dst, baud, faults, stop, is_master_dst=False, is_master_src=False):
        super().__init__(name=name, daemon=True)
        self.src, self.dst = src, dst
        self.stop_event = stop
        self.bps = baud / 10.0 if baud else None  # 8N1: ten bit times per byte
        self.faulty = faults
        self.master_dst = is_master_dst
        self.master_src = is_master_src
        self.moved = 0
        self.discarded = 0

    def _listener(self):
        """False while nobody has the pty's slave open: a board's output then goes nowhere."""
        p = select.poll()
        p.register(self.dst, select.POLLOUT)
        return not any(ev & select.POLLHUP for _, ev in p.poll(0))

    def _write(self, data):
        view = memoryview(data)
        while view and not self.stop_event.is_set():
            if self.master_dst and not self._listener():
                self.discarded += len(view)
                return
            try:
                n = os.write(self.dst, view)
                view = view[n:]
            except BlockingIOError:
                select.select([], [self.dst], [], 0.05)
            except OSError:
                return

    def run(self):
        slice_size = max(1, int(self.bps * 0.005)) if self.bps else 65536
        t_next = time.monotonic()
        poller = select.poll()
        poller.register(self.src, select.POLLIN)
        while not self.stop_event.is_set():
            events = poller.poll(100)
            if not events:
                continue
            if not any(ev & select.POLLIN for _, ev in events):
                if self.master_src:  # no client has the port open
                    time.sleep(0.02)
                    continue
                return  # the board's side closed
            try:
                data = os.read(self.src, 65536)
            except BlockingIOError:
                continue
            except OSError:
                if self.master_src:
                    time.sleep(0.02)
                    continue
                return
            if not data:
                return
            if self.faulty is not None:
                data = self.faulty.apply(data)
            if self.bps is None:
                self._write(data)
                self.moved += len(data)
                continue
            for i in range(0, len(data), slice_size):
                piece = data[i:i + slice_size]
                now = time.monotonic()
                if t_next > now:
                    time.sleep(t_next - now)
                else:
                    t_next = now  # an idle line saves up no credit
                self._write(piece)
                self.moved += len(piece)
                t_next += len(piece) / self.bps


# --- the reset button ----------------------------------------------------------------------------
# A pty has no modem lines, so the RTS pulse that resets an ESP32 dev board cannot reach a
# virtual one. Each board listens instead on a datagram socket named after its port, and
# press_reset(port) is the EN button: `dmagent flash` uses it the way it pulses RTS.
def _button_path(port):
    folder = Path(tempfile.gettempdir()) / ("dmagent-vboard-%d" % os.getuid())
    return folder / (port.strip("/").replace("/", "_") + ".reset")


def press_reset(port):
    """Reset the virtual board on port (a power cycle). False if no virtual board is there."""
    path = _button_path(port)
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(b"reset", str(path))
        except OSError:  # a board that is gone left its name behind
            path.unlink(missing_ok=True)
            return False
    return True


def _reset_strategy(port, ser):
    """The flasher's reset strategy for a virtual board: its button; it boots as from power-on."""
    return 2.0 if press_reset(port) else None


register_reset(_reset_strategy)  # `dmagent flash` finds it when RTS cannot reach a pty


class _ResetButton(threading.Thread):
    def __init__(self, board):
        super().__init__(name="vboard-reset", daemon=True)
        self.board = board
        self.path = _button_path(board.port)
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        self.path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))

    def run(self):
        while True:
            try:
                data = self.sock.recv(16)
            except OSError:
                return  # closed: the board is off
            if data == b"reset":
                try:
                    self.board.restart(wait_ready=False)
                except VboardError as exc:
                    if self.board.log:
                        self.board.log("vboard: reset failed: %s" % exc)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.path.unlink(missing_ok=True)


# --- the board ---------------------------------------------------------------------------------
class VirtualBoard:
    """A MicroPython board on a pseudo-terminal. ``port`` is the path clients open.

    dir: the board's flash (a host folder; created if missing). baud: bytes are carried at
    most at this rate (8N1), in each direction; None: as fast as they come. faults: a Faults
    or a SPEC string. log: called with each status line the board prints on stderr.
    """

    def __init__(self, dir, baud=None, faults=None, heap=DEFAULT_HEAP, log=None, node=None):
        self.dir = Path(dir).resolve()
        self.baud = baud
        self.faults = Faults.parse(faults)
        self.heap = heap
        self.log = log
        self.node = node
        self.port = None
        self._master = None
        self._proc = None
        self._stop = None
        self._pumps = []
        self._lines = {}
        self._cond = threading.Condition()
        self._events = []  # status lines seen from the current Node process
        self._button = None  # the reset button (press_reset)
        self._power = threading.RLock()  # one power cycle at a time (the button is a thread)
        self._stderr_tail = []

    # lifecycle
    def start(self, wait_ready=True, timeout=30):
        """Opens the pty and powers the board on. wait_ready: return once the REPL is up
        (boot.py and main.py ran); False: once the interpreter runs (before boot.py)."""
        if self._master is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            master, slave = os.openpty()
            tty.setraw(slave)
            self.port = os.ttyname(slave)
            os.close(slave)  # clients open the path; the pty keeps its settings
            os.set_blocking(master, False)
            self._master = master
            if self.faults is not None:
                self._lines = {d: _FaultyLine(self.faults, d) for d in ("in", "out") if self.faults.applies_to(d)}
            self._button = _ResetButton(self)
            self._button.start()
        with self._power:
            self._power_on(wait_ready, timeout)
        return self

    def _power_on(self, wait_ready, timeout):
        node = self.node or node_path()
        where = js_dir()
        if not (where / "node_modules" / RUNTIME_PACKAGE).exists():
            ensure_node_runtime(log=self.log or (lambda line: None))  # first start of an installed copy
        with self._cond:
            self._events = []
        self._proc = subprocess.Popen(
            [node, str(where / "board.mjs"), "--dir", str(self.dir), "--heap", str(int(self.heap))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=str(where), start_new_session=True,
        )
        proc = self._proc
        os.set_blocking(proc.stdin.fileno(), False)
        os.set_blocking(proc.stdout.fileno(), False)
        self._stop = threading.Event()
        self._pumps = [
            _Pump("vboard-in", self._master, proc.stdin.fileno(), self.baud, self._lines.get("in"),
                  self._stop, is_master_src=True),
            _Pump("vboard-out", proc.stdout.fileno(), self._master, self.baud, self._lines.get("out"),
                  self._stop, is_master_dst=True),
            threading.Thread(target=self._read_status, args=(proc,), name="vboard-status", daemon=True),
        ]
        for t in self._pumps:
            t.start()
        self._wait_for("vboard: ready" if wait_ready else "vboard: up", timeout)

    def _read_status(self, proc):
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                if proc is self._proc:
                    self._events.append(line)
                    self._stderr_tail = (self._stderr_tail + [line])[-20:]
                self._cond.notify_all()
            if self.log:
                self.log(line)
        with self._cond:
            self._cond.notify_all()

    def _wait_for(self, prefix, timeout, after=0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._events[after:]:
                    if line.startswith(prefix):
                        return
                if self._proc is None or self._proc.poll() is not None:
                    raise VboardError("the virtual board stopped:\n" + "\n".join(self._stderr_tail))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VboardError("the virtual board did not say %r within %gs" % (prefix, timeout))
                self._cond.wait(min(left, 0.2))

    def wait_ready(self, timeout=10):
        """Waits until the REPL is up after the latest (soft or power-on) boot."""
        with self._cond:
            boots = [i for i, line in enumerate(self._events) if line.startswith("vboard: up")]
        self._wait_for("vboard: ready", timeout, after=boots[-1] if boots else 0)

    def _power_off(self):
        proc, self._proc = self._proc, None
        if self._stop is not None:
            self._stop.set()
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # a power cut: no goodbye
            except ProcessLookupError:
                pass
            proc.wait()
        for t in self._pumps:
            t.join(timeout=2)
        if proc is not None:
            for f in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    f.close()
                except OSError:
                    pass
        self._pumps = []

    def restart(self, wait_ready=True, timeout=30):
        """Power cycle: the board loses power at once and boots again. The port stays."""
        with self._power:
            self._power_off()
            self._power_on(wait_ready, timeout)

    def stop(self):
        """Powers the board off and closes the port."""
        if self._button is not None:
            self._button.close()
            self._button = None
        with self._power:
            self._power_off()
        if self._master is not None:
            os.close(self._master)
            self._master = None

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    @property
    def stats(self):
        """Bytes carried and faults made, per direction ("in": to the board, "out": from it)."""
        result = {}
        names = {"vboard-in": "in", "vboard-out": "out"}
        for t in self._pumps:
            if isinstance(t, _Pump):
                d = names[t.name]
                result[d] = {"moved": t.moved, "discarded": t.discarded}
                if d in self._lines:
                    result[d].update(self._lines[d].stats)
        return result

    def __enter__(self):
        if self._master is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
