"""Soak: many requests of every kind against one agent, each answer checked against a model.

    python -m dmagent.host_tools.bench.soak --url URL [--key FILE] [--requests 10000]
    python -m dmagent.host_tools.bench.soak --runtime micropython [--heap 110k] [--bundle DIR]
    python -m dmagent.host_tools.bench.soak --runtime micropython-frozen [--heap 110k]
    python -m dmagent.host_tools.bench.soak --vboard [--bundle DIR]

With --runtime the device runtime is started on a pseudo-terminal, running a built bundle's
.mpy files (the virtual board's bundle, built if not given) under a hard heap cap, and its
log is searched for running out of memory (micropython-frozen: the agent frozen into the
Unix port's firmware, no bundle). With --vboard the bundle is flashed onto a
virtual board and the agent is driven on its console. A key for ServerA is made for both.
Exit status 0 only if every answer was right and the agent never ran out of memory.
"""

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dmagent.agent import proto as P
from dmagent.host_tools.client.device import Device, DeviceError
from dmagent.host_tools.paths import DEMO_CONFIG, ROOT

BASE = "./Soak"
MAX_LEAVES = 24
OUT_OF_MEMORY = ("MemoryError", "out of memory")

# (weight, kind): the mix of a management session, reads first
MIX = ((30, "get"), (22, "replace"), (10, "add"), (8, "delete"), (5, "missing"), (6, "check"),
       (5, "acl"), (4, "children"), (3, "list"), (4, "info"), (3, "devinfo"))


class Soak:
    """The requests and the model of what the agent must answer."""

    def __init__(self, dev, principal, seed=1):
        self.dev = dev
        self.principal = principal
        self.rng = random.Random(seed)
        self.leaves = {}  # name -> value
        self.counter = 0
        self.acl = "Add=*&Delete=*&Get=*&Replace=%s" % principal
        self.kinds = [kind for weight, kind in MIX for _ in range(weight)]
        self.wrong = []
        self.counts = {}
        self.heap_free = []  # from `info`, on MicroPython

    def setup(self):
        try:
            self.dev.delete(BASE)  # what an earlier run left
        except DeviceError as exc:
            if exc.status != P.S_NOT_FOUND:
                raise
        self.dev.add(BASE, interior=True)
        self.dev.set_acl(BASE, self.acl)

    def _value(self, like=None):
        """A new value; of like's type if given (a leaf keeps the format it was added with)."""
        self.counter += 1
        if isinstance(like, int) or like is None and self.rng.random() < 0.5:
            return self.rng.randrange(-(1 << 31), 1 << 31)
        return "v%d-%s" % (self.counter, "x" * self.rng.randrange(0, 40))

    def _expect(self, what, got, want):
        if got != want:
            self.wrong.append("%s: got %r, want %r" % (what, got, want))

    def step(self):
        kind = self.rng.choice(self.kinds)
        if kind in ("get", "replace", "delete") and not self.leaves:
            kind = "add"
        if kind == "add" and len(self.leaves) >= MAX_LEAVES:
            kind = "delete"
        self.counts[kind] = self.counts.get(kind, 0) + 1
        dev, rng = self.dev, self.rng
        try:
            if kind == "get":
                name = rng.choice(sorted(self.leaves))
                self._expect("get " + name, dev.get("%s/%s" % (BASE, name)), self.leaves[name])
            elif kind == "replace":
                name = rng.choice(sorted(self.leaves))
                value = self._value(self.leaves[name])
                dev.replace("%s/%s" % (BASE, name), value)
                self.leaves[name] = value
            elif kind == "add":
                name = "L%d" % self.counter
                value = self._value()
                dev.add("%s/%s" % (BASE, name), value)
                self.leaves[name] = value
            elif kind == "delete":
                name = rng.choice(sorted(self.leaves))
                dev.delete("%s/%s" % (BASE, name))
                del self.leaves[name]
            elif kind == "missing":
                try:
                    dev.get("%s/Nope%d" % (BASE, self.counter))
                    self.wrong.append("get of a missing node answered 200")
                except DeviceError as exc:
                    self._expect("get missing", exc.status, P.S_NOT_FOUND)
            elif kind == "check":
                self._expect("check own", dev.check(BASE, self.principal, "Replace"), (True, BASE))
                self._expect("check other", dev.check(BASE, "NoSuchServer", "Replace"), (False, BASE))
            elif kind == "acl":
                self._expect("acl", dev.acl(BASE)[0], self.acl)
            elif kind == "children":
                self._expect("children", sorted(dev.get(BASE) or []), sorted(self.leaves))
            elif kind == "list":
                got = {uri[len(BASE) + 1:]: value for uri, value in dev.list(BASE, data=True, page=8)
                       if uri != BASE}
                self._expect("list", got, self.leaves)
            elif kind == "info":
                info = dev.info()
                self._expect("info principal", info["principal"], self.principal)
                if "heap_free" in info:
                    self.heap_free.append(info["heap_free"])
            elif kind == "devinfo":
                self._expect("DevInfo/Man", bool(dev.get("./DevInfo/Man")), True)
        except DeviceError as exc:
            self.wrong.append("%s: %s" % (kind, exc))


def soak(dev, principal, requests=10000, seed=1, progress=None, key=None, session_every=0):
    """Run about `requests` checked requests on dev (a Device with principal's session).
    session_every: handshake anew (with key) every that many requests, as gateways that
    reconnect do. Returns a dict of figures; `wrong` lists every answer that did not match
    the model."""
    run = Soak(dev, principal, seed)
    run.setup()
    start_requests, start_retries = dev.requests_sent, dev.retries_sent
    sessions = 1
    t0 = time.monotonic()
    while dev.requests_sent - start_requests < requests:
        if session_every and (dev.requests_sent - start_requests) >= sessions * session_every:
            try:
                dev.handshake(principal, key)
            except DeviceError as exc:
                run.wrong.append("handshake: %s" % exc)
            sessions += 1
        run.step()
        if progress:
            progress(dev.requests_sent - start_requests)
    seconds = time.monotonic() - t0
    sent = dev.requests_sent - start_requests
    dev.delete(BASE)
    return {"requests": sent, "sessions": sessions, "retries": dev.retries_sent - start_retries,
            "seconds": seconds, "rate": sent / seconds if seconds else 0.0,
            "wrong": run.wrong, "kinds": run.counts, "leaves_at_end": len(run.leaves),
            "heap_free_min": min(run.heap_free) if run.heap_free else None,
            "heap_free_max": max(run.heap_free) if run.heap_free else None}


# --- targets ----------------------------------------------------------------------------------
def _key(work):
    """A new key file for ServerA: (its path, the key)."""
    from dmagent.host_tools.client.keys import load_key_file, new_key_file

    keys = work / "keys"
    keys.mkdir()
    new_key_file("ServerA", keys / "ServerA.key")
    return keys / "ServerA.key", load_key_file(keys / "ServerA.key")[1]


def _bundle(work, bundle):
    from dmagent.firmware_build.bundle import Bundle, build

    return Bundle.load(bundle) if bundle else build("virtual", work / "bundle")


def on_device_runtime(requests, heap, bundle, work, progress=None, session_every=0, runtime="micropython"):
    """The bundle's .mpy files on the device runtime with a heap cap, over a pty; with
    runtime "micropython-frozen" the agent frozen into the firmware instead (no bundle)."""
    key, secret = _key(work)
    frozen = runtime == "micropython-frozen"
    built = None if frozen else _bundle(work, bundle)
    argv = [sys.executable, "-m", "dmagent.host_tools.cli", "serve", "--runtime", runtime, "--heap", heap,
            "--pty", "--state", str(work / "state"), "--config", str(DEMO_CONFIG), "--keys", str(key.parent)]
    if built:
        argv += ["--bundle", str(built.dir)]
    log_path = work / "agent.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        try:
            line = proc.stdout.readline()
            if not line.startswith("serving "):
                raise SystemExit("the agent did not start:\n" + log_path.read_text()[-2000:])
            with Device.open(line.split(None, 1)[1].strip(), key=key, timeout=3.0) as dev:
                result = soak(dev, "ServerA", requests, progress=progress, key=secret,
                              session_every=session_every)
        finally:
            proc.terminate()
            proc.wait(10)
    text = log_path.read_text(errors="replace")
    result["out_of_memory"] = [line for line in text.splitlines() if any(m in line for m in OUT_OF_MEMORY)]
    result["log"] = text
    result["target"] = ("frozen runtime, %s heap" % heap if frozen
                        else "device runtime, %s heap, bundle %s" % (heap, built.version))
    return result


def on_vboard(requests, bundle, work, progress=None, session_every=0):
    """The bundle flashed onto a virtual board, driven on its console."""
    from dmagent.host_tools.flash import flash
    from dmagent.host_tools.vboard.board import VirtualBoard, ensure_node_runtime

    ensure_node_runtime(log=lambda line: None)
    key, secret = _key(work)
    built = _bundle(work, bundle)
    config = json.loads(DEMO_CONFIG.read_text())
    with VirtualBoard(work / "flash") as board:
        flash(board.port, built, config=config, keys=[key])
        with Device.open("serial://" + board.port, key=key, timeout=3.0) as dev:
            result = soak(dev, "ServerA", requests, progress=progress, key=secret, session_every=session_every)
    result["out_of_memory"] = []  # a 420 answer would show in `wrong`; the board's log is in its RAM
    result["heap_free_min"] = result["heap_free_max"] = None  # this build's heap grows: no limit to report
    result["target"] = "virtual board, bundle %s" % built.version
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running agent (tcp://, serial://, /dev/tty...)")
    where.add_argument("--runtime", choices=["micropython", "micropython-frozen"],
                       help="start a MicroPython runtime (micropython: on a bundle's .mpy files)")
    where.add_argument("--vboard", action="store_true", help="flash a virtual board and drive it")
    parser.add_argument("--key", help="with --url: the key file to handshake with")
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--heap", default="110k")
    parser.add_argument("--bundle", help="a built bundle folder (default: build the virtual board's)")
    parser.add_argument("--session-every", type=int, default=0, metavar="N",
                        help="handshake anew every N requests (0: one session)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dmagent-soak-"))
    try:
        if args.url:
            from dmagent.host_tools.client.keys import load_key_file

            principal = load_key_file(args.key)[0] if args.key else None
            key = load_key_file(args.key)[1] if args.key else None
            with Device.open(args.url, key=args.key, timeout=3.0) as dev:
                result = soak(dev, principal, args.requests, key=key, session_every=args.session_every)
            result["out_of_memory"], result["target"] = [], args.url
        elif args.runtime:
            result = on_device_runtime(args.requests, args.heap, args.bundle, work,
                                       session_every=args.session_every, runtime=args.runtime)
        else:
            result = on_vboard(args.requests, args.bundle, work, session_every=args.session_every)
    except (DeviceError, OSError, ValueError) as exc:
        print("soak: %s" % exc, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    heap = ""
    if result["heap_free_min"] is not None:
        heap = ", heap free %d..%d B" % (result["heap_free_min"], result["heap_free_max"])
    print("soak on %s: %d requests in %d sessions, %.1f s (%.0f/s), %d retried, %d wrong, "
          "%d out-of-memory log lines%s"
          % (result["target"], result["requests"], result["sessions"], result["seconds"], result["rate"],
             result["retries"],
             len(result["wrong"]), len(result["out_of_memory"]), heap))
    for line in (result["wrong"] + result["out_of_memory"])[:20]:
        print("  " + line)
    return 0 if not result["wrong"] and not result["out_of_memory"] else 1


if __name__ == "__main__":
    sys.exit(main())
