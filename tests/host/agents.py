"""Start real `dmagent serve` processes for tests: CPython or MicroPython, TCP or a pty.

No mocks: each agent is a separate process on a loopback port or a pseudo-terminal,
exactly as a user would start it.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "boards" / "unix" / "demo-config.json"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dmagent_argv(*args):
    return [sys.executable, "-m", "dmagent.host_tools.cli"] + list(args)


class RunningAgent:
    def __init__(self, proc, urls, log_path):
        self.proc = proc
        self.urls = urls
        self.log_path = log_path

    @property
    def url(self):
        return self.urls[0]

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


# The heap each MicroPython runtime is tested at: a board's 110k, for the .mpy agent (code in
# the heap, stock firmware) and the frozen one (code in flash) alike (docs/memory.md).
TEST_HEAP = {"micropython": "110k", "micropython-frozen": "110k"}


def start_agent(tmp_path, runtime="cpython", tcp=True, pty=False, state=True, config=None,
                insecure=True, heap=None, extra=(), root=ROOT, preexec_fn=None):
    """Start `dmagent serve` (from the clone at root) and wait until it announces every link."""
    args = ["serve", "--runtime", runtime]
    if tcp:
        port = 0 if runtime == "cpython" else free_port()
        args += ["--tcp", "127.0.0.1:%d" % port]
    if pty:
        args.append("--pty")
    if state:
        args += ["--state", str(tmp_path / "state")]
    if config is None:
        config = DEMO_CONFIG
    if isinstance(config, dict):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        config = path
    args += ["--config", str(config)]
    if insecure:
        args.append("--insecure")
    if runtime.startswith("micropython"):
        args += ["--heap", heap or TEST_HEAP[runtime]]
    args += list(extra)
    log_path = tmp_path / ("agent-%d.log" % time.monotonic_ns())
    log = open(log_path, "w")
    proc = subprocess.Popen(dmagent_argv(*args), cwd=str(root), stdout=subprocess.PIPE, stderr=log,
                            text=True, start_new_session=True, preexec_fn=preexec_fn)
    wanted = int(bool(tcp)) + int(bool(pty))
    urls = []
    deadline = time.monotonic() + 60
    while len(urls) < wanted:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("agent exited (%s):\n%s" % (proc.wait(), log_path.read_text()))
        if line.startswith("serving "):
            urls.append(line.split(None, 1)[1].strip())
        if time.monotonic() > deadline:
            raise RuntimeError("agent did not announce its links:\n" + log_path.read_text())
    return RunningAgent(proc, urls, log_path)


@contextlib.contextmanager
def console_board(fs, paths, heap="110k", runtime="micropython"):
    """A board's main.py (its file system in folder fs, modules from paths) on a MicroPython
    runtime with a raw pseudo-terminal as its console; yields the pty's master fd."""
    import tty

    from dmagent.host_tools.runtime import micropython as mpy_runtime

    master, slave = os.openpty()
    tty.setraw(slave)
    proc = mpy_runtime.spawn(Path(fs) / "main.py", heap=heap, paths=paths, compiled=False, runtime=runtime,
                             cwd=str(fs), stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    try:
        yield master
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)


def write_key_file(folder, principal, hex_key):
    """A key file as `dmagent keys new` writes it (mode 0600), for agents and clients in tests."""
    path = Path(folder) / ("%s.key" % principal)
    path.write_text(json.dumps({"principal": principal, "key": hex_key}))
    path.chmod(0o600)
    return path
