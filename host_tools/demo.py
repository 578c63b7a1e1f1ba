"""`make demo`: start a real agent and walk through a short session, printing every step.

The agent runs on the MicroPython device runtime with an ESP32-sized heap (110k) by
default; `--runtime cpython` runs it under CPython instead.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from agent import proto as P
from host_tools.cli import draw_tree, show_value
from host_tools.client import Device, DeviceError

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "boards" / "unix" / "demo-config.json"
console = Console(highlight=False)


def step(text):
    console.print("\n[bold cyan]>[/] " + text)


def answer(text):
    console.print("  " + text)


def start(runtime, state_dir):
    argv = [sys.executable, "-m", "host_tools.cli", "serve", "--runtime", runtime, "--pty",
            "--state", str(state_dir), "--config", str(CONFIG), "--insecure"]
    step("dmagent serve --runtime %s --pty --state %s --config %s --insecure"
         % (runtime, state_dir, CONFIG.relative_to(ROOT)))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    line = proc.stdout.readline()
    if not line.startswith("serving "):
        raise SystemExit("the agent did not start (exit %s)" % proc.wait())
    url = line.split(None, 1)[1].strip()
    answer("agent is serving on the pseudo-terminal %s" % url)
    return proc, url


def session(dev):
    step("hello, naming principal ServerA (allowed because the agent runs --insecure)")
    info = dev.hello("ServerA")
    answer("agent %s on %s, protocol %s, frames up to %d bytes"
           % (info["agent"], info["runtime"], info["proto"], info["max_frame"]))

    step("get ./DevInfo/DevId and ./DevDetail/FwV")
    answer("DevId = %s" % dev.get("./DevInfo/DevId"))
    answer("FwV   = %s  (%d bytes on the wire: request %d + response %d)" % (
        dev.get("./DevDetail/FwV"), dev.last_request_bytes + dev.last_response_bytes,
        dev.last_request_bytes, dev.last_response_bytes))

    step("tree ./DevInfo")
    console.print(draw_tree(list(dev.list("./DevInfo", data=True))))

    step("add ./Sensors (interior) as ServerA, who has no Replace on the root")
    dev.add("./Sensors", interior=True)
    allowed, source = dev.check("./Sensors", "ServerA", "Replace")
    answer("creator rule: ServerA may Replace ./Sensors: %s (own ACL of %s); it has no Get yet"
           % (allowed, source))

    step("acl ./Sensors --set 'Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA'")
    dev.set_acl("./Sensors", "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA")
    own, effective, source = dev.acl("./Sensors")
    answer("own ACL now %r" % own)

    step("add ./Sensors/Temp = 21 (int); its ACL is empty, so it inherits")
    dev.add("./Sensors/Temp", 21, "int")
    own, effective, source = dev.acl("./Sensors/Temp")
    answer("own %r, effective %r, from %s" % (own, effective, source))

    step("check: may ServerB Replace ./Sensors/Temp?")
    allowed, source = dev.check("./Sensors/Temp", "ServerB", "Replace")
    answer("%s (decided by the ACL of %s)" % ("allowed" if allowed else "denied", source))

    step("acl ./Sensors/Temp --set 'Get=*&Replace=ServerA+ServerB' (needs Replace on the parent)")
    dev.set_acl("./Sensors/Temp", "Get=*&Replace=ServerA+ServerB")
    allowed, source = dev.check("./Sensors/Temp", "ServerB", "Replace")
    answer("ServerB Replace is now %s (decided by %s)" % ("allowed" if allowed else "denied", source))

    step("replace ./Sensors/Temp = 23, then get it")
    dev.replace("./Sensors/Temp", 23)
    answer("Temp = %s" % show_value(dev.get("./Sensors/Temp")))

    step("atomic: add ./Sensors/Hum, replace Temp, add Temp again (already exists)")
    try:
        dev.atomic([(P.OP_ADD, {P.K_URI: "./Sensors/Hum", P.K_VALUE: 40}),
                    (P.OP_REPLACE, {P.K_URI: "./Sensors/Temp", P.K_VALUE: 99}),
                    (P.OP_ADD, {P.K_URI: "./Sensors/Temp", P.K_VALUE: 1}),
                    (P.OP_DELETE, {P.K_URI: "./Sensors"})])
    except DeviceError as exc:
        statuses = [item[P.K_STATUS] for item in exc.response.get(P.K_ITEMS, [])]
        answer("%s; items: %s" % (exc, statuses))
    answer("nothing changed: Temp = %s, children %s" % (dev.get("./Sensors/Temp"), dev.get("./Sensors")))

    step("delete ./DevInfo (a permanent standard object)")
    try:
        dev.delete("./DevInfo")
    except DeviceError as exc:
        answer("refused: %s" % exc)

    step("delete ./Sensors: needs Delete on every node below, and Temp's own ACL has none")
    try:
        dev.delete("./Sensors")
    except DeviceError as exc:
        answer("refused: %s" % exc)

    step("acl ./Sensors/Temp --set 'Delete=ServerA&Get=*&Replace=ServerA+ServerB', delete again")
    dev.set_acl("./Sensors/Temp", "Delete=ServerA&Get=*&Replace=ServerA+ServerB")
    dev.delete("./Sensors")
    try:
        dev.get("./Sensors")
    except DeviceError as exc:
        answer("gone: %s" % exc)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtime", choices=["micropython", "cpython"], default="micropython")
    args = parser.parse_args(argv)
    state = Path(tempfile.mkdtemp(prefix="dmagent-demo-"))
    proc, url = start(args.runtime, state)
    try:
        with Device.open(url, timeout=5.0) as dev:
            session(dev)
        console.print("\n[bold green]demo finished[/]: every step above was a real request to the agent.")
    except DeviceError as exc:
        console.print("[red]demo failed:[/] %s" % exc)
        return 1
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
