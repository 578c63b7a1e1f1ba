"""Many TCP clients at once against `dmagent serve`: every op answered, every write once.

Each client holds its own key'd session, writes its own leaf (a counter it alone changes)
and reads it back; at the end every leaf must hold exactly its client's last value, and
every connect the agent refuses must have been told so (a 420 status frame, not a reset).
`make load` runs the long version; tests/host/test_load.py a short one in `make test`.

    python -m dmagent.host_tools.bench.load --runtime cpython --clients 64 --ops 1000
    python -m dmagent.host_tools.bench.load --runtime micropython --clients 8 --ops 100
"""

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cbor2

from dmagent.agent import proto as P
from dmagent.host_tools.client import wire
from dmagent.host_tools.client.device import Device, DeviceError
from dmagent.host_tools.client.keys import new_key_file
from dmagent.host_tools.client.transport import LinkError
from dmagent.host_tools.paths import DEMO_CONFIG


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(work, runtime, heap="110k", links=None):
    """A keyed agent in work/ (config links: its TCP link bounds): (process, url, key file)."""
    keys = work / "keys"
    keys.mkdir()
    new_key_file("ServerA", keys / "ServerA.key")
    config = json.loads(DEMO_CONFIG.read_text())
    if links:
        config["links"] = links
    (work / "config.json").write_text(json.dumps(config))
    port = _free_port()
    argv = [sys.executable, "-m", "dmagent.host_tools.cli", "serve", "--runtime", runtime, "--tcp",
            "127.0.0.1:%d" % port, "--state", str(work / "state"), "--config", str(work / "config.json"),
            "--keys", str(keys)]
    if runtime == "micropython":
        argv += ["--heap", heap]
    log = open(work / "agent.log", "w")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    line = proc.stdout.readline()
    if not line.startswith("serving "):
        raise SystemExit("the agent did not start:\n" + (work / "agent.log").read_text()[-2000:])
    return proc, "tcp://127.0.0.1:%d" % port, keys / "ServerA.key"


def _connect(url, key, result, tries=10):
    """A session; a device that says busy (its 4 pending handshakes, 2 per address, taken by
    the other clients of this host) is asked again a second later, as a DM server would."""
    for attempt in range(tries):
        try:
            return Device.open(url, key=key, timeout=10, retries=8)
        except DeviceError as exc:
            if "busy" not in exc.message or attempt == tries - 1:
                raise
            result["busy"] += 1
            time.sleep(1)


def _client(url, key, index, ops, result):
    """One client: its own leaf, written and read back ops times in all."""
    uri = "./Load/C%d" % index
    last = None
    try:
        dev = _connect(url, key, result)
        with dev:
            try:
                dev.add(uri, 0)
            except DeviceError as exc:
                if exc.status != P.S_EXISTS:
                    raise
            for i in range(ops):
                if i % 2:
                    assert dev.get(uri) == last, "client %d read %r, wrote %r" % (index, dev.get(uri), last)
                else:
                    dev.replace(uri, i)
                    last = i
            result["answered"] += ops
            result["retries"] += dev.retries_sent
        result["last"][uri] = last
    except DeviceError as exc:
        result["refused"].append("%s: %s" % (index, exc))
    except (LinkError, OSError, AssertionError) as exc:
        result["failed"].append("%s: %s" % (index, exc))


def _refusals(url, count):
    """Connect count times at once and hold on: (links held, connects told 420, resets)."""
    held, told, reset = [], 0, 0
    for _ in range(count):
        sock = socket.create_connection(url[6:].rsplit(":", 1), timeout=5)
        held.append(sock)
    time.sleep(0.5)
    kept = 0
    for sock in held:
        sock.settimeout(0.5)
        reader = wire.FrameReader()
        try:
            data = sock.recv(4096)
        except socket.timeout:
            kept += 1  # not refused: this link is up and waits for us
            continue
        except ConnectionResetError:
            reset += 1
            continue
        frames = [cbor2.loads(bytes(b)) for _, b in reader.feed(data)]
        if frames and frames[0].get(P.K_STATUS) == P.S_DEVICE_FULL:
            told += 1
        else:
            reset += 1
    for sock in held:
        sock.close()
    return kept, told, reset


def run(runtime="cpython", clients=64, ops=1000, heap="110k", work=None):
    work = Path(work or tempfile.mkdtemp(prefix="dmagent-load-"))
    # Every client is on this host, one source: it may hold all the links but one.
    links = {"max": clients + 1, "per_source": clients} if runtime == "cpython" else None
    proc, url, key = start(work, runtime, heap, links)
    try:
        with Device.open(url, key=key, timeout=10) as dev:
            dev.add("./Load", interior=True)
            dev.set_acl("./Load", "Add=ServerA&Get=ServerA&Replace=ServerA&Delete=ServerA")
        result = {"runtime": runtime, "clients": clients, "ops": ops, "answered": 0, "retries": 0, "busy": 0,
                  "refused": [], "failed": [], "last": {}}
        start_at = time.monotonic()
        threads = [threading.Thread(target=_client, args=(url, key, i, ops, result)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result["seconds"] = round(time.monotonic() - start_at, 1)
        with Device.open(url, key=key, timeout=10, retries=8) as dev:
            result["wrong"] = [uri for uri, last in result["last"].items() if dev.get(uri) != last]
        result["links_held"], result["told_busy"], result["reset"] = _refusals(url, 12)
    finally:
        proc.terminate()
        proc.wait(10)
    result["last"] = len(result["last"])
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--heap", default="110k")
    args = parser.parse_args(argv)
    result = run(args.runtime, args.clients, args.ops, args.heap)
    print(json.dumps(result, indent=1))
    ok = not (result["failed"] or result["refused"] or result["wrong"] or result["reset"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
