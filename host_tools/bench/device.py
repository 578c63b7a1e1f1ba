"""`make bench`: the numbers the project reports, measured, never asserted as timings.

- bytes on the wire for a Get of ./DevDetail/FwV (request + response frames);
- MicroPython heap (device runtime, gc.mem_alloc) after importing the agent, and with N leaves;
- round trips per second over loopback TCP with one client, per runtime.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dmagent.host_tools.runtime import micropython as mpy_runtime
from dmagent.host_tools.client.device import Device
from dmagent.host_tools.paths import DEMO_CONFIG, ROOT

CONFIG = DEMO_CONFIG


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


KEY = bytes(range(16))


def _key_dir():
    folder = Path(tempfile.mkdtemp(prefix="dmagent-bench-keys-"))
    (folder / "ServerA.key").write_text(json.dumps({"principal": "ServerA", "key": KEY.hex()}))
    return folder


def start_agent(runtime, heap="110k"):
    port = _free_port()
    # --insecure and --keys at once: plain and sealed sessions measured against one agent
    argv = [sys.executable, "-m", "dmagent.host_tools.cli", "serve", "--runtime", runtime,
            "--tcp", "127.0.0.1:%d" % port, "--config", str(CONFIG), "--insecure",
            "--keys", str(_key_dir())]
    if runtime == "micropython":
        argv += ["--heap", heap]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("serving "):
        raise SystemExit("agent did not start: exit %s" % proc.wait())
    return proc, line.split()[1]


def wire_bytes(url):
    with Device.open(url, principal="ServerA") as dev:
        dev.get("./DevDetail/FwV")
        return dev.last_request_bytes, dev.last_response_bytes


def secure_numbers(url, count):
    """Handshake time and bytes, extra bytes a sealed request costs, sealed round trips/s."""
    times = []
    for _ in range(5):
        start = time.perf_counter()
        with Device.open(url, principal="ServerA", key=KEY) as dev:
            times.append(time.perf_counter() - start)
            hs_bytes = dev.handshake_bytes
    with Device.open(url, principal="ServerA", key=KEY) as dev:
        dev.get("./DevDetail/FwV")
        req, resp = dev.last_request_bytes, dev.last_response_bytes
    return {
        "handshake_ms_median": round(sorted(times)[len(times) // 2] * 1000, 1),
        "handshake_bytes": hs_bytes,
        "get_fwv_sealed_request_bytes": req,
        "get_fwv_sealed_response_bytes": resp,
        "sealed_round_trips_per_s": round(round_trips(url, count, key=KEY), 1),
    }


def round_trips(url, count, key=None):
    with Device.open(url, principal="ServerA", key=key) as dev:
        dev.get("./DevDetail/FwV")
        start = time.perf_counter()
        for _ in range(count):
            dev.get("./DevDetail/FwV")
        elapsed = time.perf_counter() - start
    return count / elapsed


def heap(leaves, heap_size, keys=False):
    args = [str(leaves)] + (["--keys"] if keys else [])
    proc = mpy_runtime.run_file(ROOT / "tools" / "heap_probe.py", heap=heap_size, args=args,
                                capture_output=True, text=True, cwd=str(ROOT))
    if proc.returncode != 0:
        return {"error": (proc.stdout + proc.stderr).strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(count, leaves, heap_size="110k"):
    results = {
        "heap_size": heap_size,
        # how many leaves fit beside the agent in a board-sized heap, without and with keys
        "heap_device_runtime": heap(5000, heap_size),
        "heap_device_runtime_keys": heap(5000, heap_size, keys=True),
        # the 1,000-leaf tree, in a heap big enough to hold it
        "heap_1000_leaves_2m": heap(leaves, "2m"),
    }
    for runtime in ("cpython", "micropython"):
        proc, url = start_agent(runtime, heap_size)
        try:
            req, resp = wire_bytes(url)
            results[runtime] = {
                "get_fwv_request_bytes": req,
                "get_fwv_response_bytes": resp,
                "round_trips_per_s": round(round_trips(url, count), 1),
                "requests": count,
            }
            results[runtime].update(secure_numbers(url, count))
            results[runtime]["sealed_extra_bytes_per_round_trip"] = (
                results[runtime]["get_fwv_sealed_request_bytes"] + results[runtime]["get_fwv_sealed_response_bytes"]
                - req - resp)
        finally:
            proc.terminate()
            proc.wait(10)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--leaves", type=int, default=1000)
    parser.add_argument("--heap", default="110k")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory():
        results = run(args.requests, args.leaves, args.heap)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
