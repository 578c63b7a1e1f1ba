"""`make demo`: build the agent, flash it onto a virtual board, and drive it over the board's
serial line with a key, printing every step.

The virtual board is MicroPython's WebAssembly build under Node.js behind a pseudo-terminal
(`dmagent vboard`). `--runtime micropython|cpython` skips the board and runs `dmagent serve`
on the device runtime (110k heap) or CPython instead.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from dmagent.agent import proto as P
from dmagent.host_tools.cli.main import draw_tree, show_value
from dmagent.host_tools.client.device import Device, DeviceError
from dmagent.host_tools.paths import DEMO_CONFIG, ROOT

CONFIG = DEMO_CONFIG
console = Console(highlight=False)


def step(text):
    console.print("\n[bold cyan]>[/] " + text)


def answer(text):
    console.print("  " + text)


def make_key(folder):
    from dmagent.host_tools.client.keys import new_key_file

    path = folder / "ServerA.key"
    step("dmagent keys new --principal ServerA --out %s" % path)
    answer("a 128-bit key for ServerA, fingerprint %s (the key itself is never printed)"
           % new_key_file("ServerA", path))
    return path


def serve(runtime, work, key):
    keys = work / "agent-keys"
    keys.mkdir()
    shutil.copy(key, keys / key.name)
    argv = [sys.executable, "-m", "dmagent.host_tools.cli", "serve", "--runtime", runtime, "--pty",
            "--state", str(work / "state"), "--config", str(CONFIG), "--keys", str(keys)]
    step("dmagent serve --runtime %s --pty --config %s --keys %s"
         % (runtime, CONFIG.relative_to(ROOT), keys))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    line = proc.stdout.readline()
    if not line.startswith("serving "):
        raise SystemExit("the agent did not start (exit %s)" % proc.wait())
    url = line.split(None, 1)[1].strip()
    answer("agent is serving on the pseudo-terminal %s" % url)
    return proc, url


def flash_board(board, bundle, key, principal=None):
    from dmagent.host_tools.flash import flash

    config = json.loads(CONFIG.read_text())
    config["device"]["mod"] = "virtual"
    # The board's owner: the one principal whose Exec gives its console back (docs/security.md);
    # a board with keys has no escape window, so the second flash needs it.
    config["security"] = dict(config.get("security") or {}, owners=["ServerA"])
    step("dmagent flash %s --bundle %s --config %s --key %s%s"
         % (board.port, bundle.dir, CONFIG.relative_to(ROOT), key, " --as " + principal if principal else ""))
    stages = []

    def progress(stage, done=0, total=0):
        if not stages or stages[-1] != stage:
            stages.append(stage)

    result = flash(board.port, bundle, config=config, keys=[key], principal=principal, progress=progress)
    answer("stages: %s" % " > ".join(stages))
    answer("%d files sent (%.1f KiB), %d already right, in %.1f s; DevId %s"
           % (len(result.sent), result.bytes_sent / 1024, len(result.skipped), result.seconds, result.devid))
    return result


def session(dev):
    info = dev.info()
    suite = {P.SUITE_CCM: "AES-CCM-16-64-128", P.SUITE_HMAC: "HMAC 256/64"}.get(info.get("suite"), "none")
    answer("agent %s on %s as %s (%s), protocol %s, frames up to %d bytes, handshake %d bytes"
           % (info["agent"], info["runtime"], info["principal"], suite, info["proto"],
              info["max_frame"], dev.handshake_bytes))

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


def on_virtual_board(work, key):
    from dmagent.firmware_build.bundle import build
    from dmagent.host_tools.vboard.board import VirtualBoard, ensure_node_runtime

    step("dmagent build --board virtual --out %s" % (work / "bundle"))
    bundle = build("virtual", work / "bundle")
    manifest = bundle.manifest
    answer("bundle %s: %d files, %.1f KiB as .mpy (%.1f KiB of source), .mpy v%s"
           % (manifest["bundle"], len(manifest["files"]), manifest["total"] / 1024,
              manifest["source_total"] / 1024, manifest["mpy"]))

    ensure_node_runtime(log=answer)
    step("dmagent vboard --dir %s" % (work / "flash"))
    with VirtualBoard(work / "flash") as board:
        answer("a MicroPython board on %s (its flash is the folder above)" % board.port)
        flash_board(board, bundle, key)

        step("connect to serial://%s with the key: handshake, then every request sealed" % board.port)
        with Device.open("serial://" + board.port, key=key, timeout=3.0) as dev:
            session(dev)
            step("add ./Demo = 'written before the power cut'")
            dev.add("./Demo", "written before the power cut")

        step("power-cycle the board (its process is killed and started again)")
        board.restart()
        with Device.open("serial://" + board.port, key=key, timeout=3.0) as dev:
            answer("./Demo = %r: the tree and the key survived" % dev.get("./Demo"))

        step("flash again, nothing changed: the agent gives the console back to ServerA, every hash matches")
        flash_board(board, bundle, key, principal="ServerA")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtime", choices=["virtual", "micropython", "cpython"], default="virtual",
                        help="virtual: build and flash a virtual board (default); micropython, "
                             "cpython: `dmagent serve` on that runtime")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dmagent-demo-"))
    proc = None
    try:
        key = make_key(work)
        if args.runtime == "virtual":
            on_virtual_board(work, key)
        else:
            proc, url = serve(args.runtime, work, key)
            with Device.open(url, key=key, timeout=5.0) as dev:
                session(dev)
        console.print("\n[bold green]demo finished[/]: every step above was a real request to the agent.")
    except DeviceError as exc:
        console.print("[red]demo failed:[/] %s" % exc)
        return 1
    except KeyboardInterrupt:
        console.print("interrupted: the demo stopped; its board or agent is stopped and its scratch "
                      "folder removed (nothing outside it was touched)")
        return 130
    except Exception as exc:  # a set-up problem (node, the board, the flash): one readable line
        console.print("[red]demo failed:[/] %s" % exc)
        return 1
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
