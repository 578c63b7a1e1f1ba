"""`make bench`: the numbers the project reports, measured, never asserted as timings.

- bytes on the wire for a Get of ./DevDetail/FwV (request + response frames);
- MicroPython heap (gc.mem_alloc) after boot and the leaves that fit, with and without keys,
  per runtime: the agent as .mpy files and frozen into the firmware; the firmware's size;
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
    if runtime.startswith("micropython"):
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


def heap(leaves, heap_size, keys=False, runtime=mpy_runtime.MPY):
    args = [str(leaves)] + (["--keys"] if keys else [])
    proc = mpy_runtime.run_file(ROOT / "tools" / "heap_probe.py", heap=heap_size, args=args, runtime=runtime,
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
        # the same with the agent frozen into the firmware (code in flash, not in the heap)
        "heap_frozen": heap(5000, heap_size, runtime=mpy_runtime.FROZEN),
        "heap_frozen_keys": heap(5000, heap_size, keys=True, runtime=mpy_runtime.FROZEN),
        # the 1,000-leaf tree, in a heap big enough to hold it
        "heap_1000_leaves_2m": heap(leaves, "2m"),
        "firmware": firmware_size(),
    }
    results["heap_table"] = heap_table(results)
    for runtime in ("cpython", "micropython", "micropython-frozen"):
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


def firmware_size():
    """The frozen firmware's size (the Unix binary built here; an ESP32's is not built here),
    and the rp2 board's ROMFS image of the agent against its partition."""
    from dmagent.firmware_build.bundle import build

    binary = Path(mpy_runtime.frozen_command()[0])
    with tempfile.TemporaryDirectory() as tmp:
        rom = build("rp2", Path(tmp) / "rp2").manifest["romfs"]
    return {"file": str(binary), "bytes": binary.stat().st_size,
            "text_data_bss": _text_data_bss(binary),
            "rp2_romfs_image_bytes": rom["size"], "rp2_romfs_partition_bytes": rom["partition_bytes"]}


def _text_data_bss(binary):
    import shutil

    if not shutil.which("size"):
        return None
    out = subprocess.run(["size", str(binary)], capture_output=True, text=True).stdout.splitlines()
    return [int(n) for n in out[1].split()[:3]] if len(out) > 1 else None


def heap_table(results):
    """One line per runtime and key set: bytes in use after boot, free after boot, leaves."""
    rows = []
    for name, key in (("mpy", "heap_device_runtime"), ("frozen", "heap_frozen")):
        for keys in (False, True):
            probe = results[key + ("_keys" if keys else "")]
            if "error" in probe:
                rows.append("%-6s %-7s %s" % (name, "keys" if keys else "no keys", probe["error"]))
                continue
            rows.append("%-6s %-7s boot %6d B in use, %6d B free after boot, %4d leaves fit (%d B each)"
                        % (name, "keys" if keys else "no keys", probe["boot_bytes"],
                           probe["free_bytes"] + probe["tree_bytes"], probe["leaves"],
                           probe["bytes_per_leaf"] or 0))
    return rows


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
