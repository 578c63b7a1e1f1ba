"""Build -> virtual board -> flash -> the agent on the same pseudo-terminal, end to end.

Real parts only: the bundle from firmware_build, the virtual board (MicroPython's
WebAssembly build under Node.js behind a pty), the flash over mpremote's raw-REPL transport,
and the host client with keys (handshake, sealed frames) on the port the flash used.
The board's folder is its flash, so the tests look at it to see what would boot.
"""

import hashlib
import json
import shutil
import threading
import time

import pytest

from dmagent.agent import proto as P
from dmagent.firmware_build.bundle import Bundle, build
from dmagent.host_tools.client.device import Device, DeviceError
from dmagent.host_tools.flash import FlashError, Repl, flash
from dmagent.host_tools.vboard.board import VirtualBoard, ensure_node_runtime
from tests.host.agents import DEMO_CONFIG

KEY_A = "a1" * 16


def setup_module():
    ensure_node_runtime(log=lambda line: None)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build("virtual", tmp_path_factory.mktemp("vb-bundle") / "virtual")


@pytest.fixture(scope="module")
def key_a(tmp_path_factory):
    path = tmp_path_factory.mktemp("vb-keys") / "ServerA.key"
    path.write_text(json.dumps({"principal": "ServerA", "key": KEY_A}))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def config():
    cfg = json.loads(DEMO_CONFIG.read_text())
    cfg["device"].pop("devid")  # each board gets its own
    cfg["escape_window_ms"] = 300  # keyed: a window only if the config asks
    cfg["security"] = {"owners": ["ServerA"]}  # the flash takes the console back as ServerA
    return cfg


def _url(board):
    return "serial://%s" % board.port


def _session(board, key, tries=20):
    """A keyed session with the board's agent (it may still be booting)."""
    for _ in range(tries):
        try:
            return Device.open(_url(board), key=key, timeout=1.0, retries=1)
        except (DeviceError, OSError):
            time.sleep(0.25)
    return Device.open(_url(board), key=key, timeout=1.0, retries=1)


def _tweaked(bundle, folder, device_path, extra):
    """A copy of bundle with one file changed (its manifest entry follows)."""
    shutil.copytree(bundle.dir, folder)
    local = folder / "files" / device_path.lstrip("/")
    data = local.read_bytes() + extra
    local.write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == device_path:
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["size"] = len(data)
    manifest["bundle"] += "-tweaked"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return Bundle.load(folder)


def _on_flash(board, bundle):
    """{device path: sha256} of the bundle's files as the board's flash holds them."""
    out = {}
    for entry in bundle.files:
        path = board.dir / entry["path"].lstrip("/")
        out[entry["path"]] = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
    return out


def _hashes(bundle):
    return {e["path"]: e["sha256"] for e in bundle.files}


def test_flashed_agent_serves_its_console_and_keeps_tree_and_keys_across_power_cycles(
        tmp_path, bundle, key_a, config):
    with VirtualBoard(tmp_path / "board") as board:
        result = flash(board.port, bundle, config=config, keys=[key_a])
        assert result.ok and not result.skipped
        # The board inflates: the files went deflated, so all the commands that wrote them took
        # fewer bytes than the base64 of the raw files alone; no packed copy is left behind.
        assert result.wire_bytes < result.bytes_sent * 4 / 3
        assert not list(board.dir.rglob("*.z"))
        assert _on_flash(board, bundle) == _hashes(bundle)
        assert result.info["runtime"] == "micropython" and result.info["devid"].startswith("urn:dmagent:virtual-")
        devid = result.info["devid"]

        with _session(board, key_a) as dev:  # the port the flash used
            assert dev.info()["principal"] == "ServerA"
            assert dev.get("./DevInfo/DevId") == devid
            dev.add("./Vb", interior=True)
            dev.set_acl("./Vb", "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA")
            dev.add("./Vb/Count", 1, "int")
            dev.replace("./Vb/Count", 42)
            assert dev.get("./Vb/Count") == 42
            assert dev.check("./Vb/Count", "ServerA", "Replace") == (True, "./Vb")
            assert dev.check("./Vb/Count", "ServerB", "Replace") == (False, "./Vb")

        with Device.open(_url(board), timeout=1.0) as anonymous:  # rule: no principal, no write
            with pytest.raises(DeviceError) as err:
                anonymous.replace("./Vb/Count", 0)
            assert err.value.status in (P.S_PERMISSION_DENIED, P.S_AUTH_REQUIRED)

        board.restart()  # a power cut: the folder is the flash
        with _session(board, key_a) as dev:  # the key survived: the handshake works
            assert dev.get("./Vb/Count") == 42
            assert dev.acl("./Vb")[0] == "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA"
            assert dev.get("./DevInfo/DevId") == devid


def test_reflash_sends_nothing_unchanged_and_only_a_changed_file(tmp_path, bundle, key_a, config):
    with VirtualBoard(tmp_path / "board") as board:
        first = flash(board.port, bundle, config=config, keys=[key_a])
        assert first.ok

        # The agent now serves the console: the flash asks it (as ServerA, with the key)
        # to hand the console back, compares every hash, and sends nothing.
        again = flash(board.port, bundle, config=config, keys=[key_a], principal="ServerA")
        assert again.entered == "agent"
        assert again.ok and again.sent == [] and again.bytes_sent == 0
        assert again.info["devid"] == first.info["devid"]

        changed = _tweaked(bundle, tmp_path / "tweaked", "/main.py", b"# changed\n")
        third = flash(board.port, changed, config=config, keys=[key_a], principal="ServerA")
        assert third.ok and third.sent == ["/main.py"]
        assert _on_flash(board, changed) == _hashes(changed)


def test_without_a_key_the_flash_resets_the_board_and_stops_it_in_its_escape_window(tmp_path, bundle, key_a,
                                                                                     config):
    with VirtualBoard(tmp_path / "board") as board:
        assert flash(board.port, bundle, config=config, keys=[key_a]).ok
        # ServerB has no key here: the agent refuses it the console, so the flash presses
        # the board's reset button (RTS on an ESP32) and Ctrl-C's through main.py's window.
        again = flash(board.port, bundle, config=config, principal="ServerB")
        assert again.ok and again.entered == "reset" and again.sent == []
        with _session(board, key_a) as dev:  # serving again, keys and tree intact
            assert dev.get("./DevInfo/DevId") == again.devid


def test_a_keyed_board_without_a_window_is_not_taken_by_a_reset_only_by_an_owner(tmp_path, bundle, key_a,
                                                                                   config):
    """Someone with the cable and the reset button, and no owner key, gets no REPL."""
    closed = {k: v for k, v in config.items() if k != "escape_window_ms"}  # keyed, no window
    with VirtualBoard(tmp_path / "board") as board:
        assert flash(board.port, bundle, config=closed, keys=[key_a]).ok
        with pytest.raises(FlashError) as err:
            flash(board.port, bundle, config=closed, principal="ServerB")
        assert "escape_window_ms" in err.value.hint
        with _session(board, key_a) as dev:  # it serves again after the reset
            assert dev.get("./DevInfo/DevId")
        # ServerA holds the key: the agent hands the console over (Exec on the Repl node)
        again = flash(board.port, bundle, config=closed, keys=[key_a], principal="ServerA")
        assert again.ok and again.entered == "agent" and again.sent == []


NOISY = {
    # about one fault per 2.5 KB each way: every garbled chunk is refused and sent again
    "noisy": "drop=0.0002,corrupt=0.0002,insert=0.0001,seed=1",
    # one byte in fifty garbled: no exchange gets through, the flash must give up cleanly
    "hopeless": "corrupt=0.02,seed=1",
}


def test_a_command_garbled_on_the_line_is_refused_by_the_board_and_changes_nothing(tmp_path):
    with VirtualBoard(tmp_path / "board") as board:
        repl = Repl(board.port)
        try:
            assert repl.enter() == "repl"
            assert repl.call("print(6*7)").strip() == b"42"  # whole: it runs (and the helpers are there)
            code = "import os\nos.mkdir('/made')"
            check = hashlib.sha256(code.encode()).hexdigest()[:8].encode()  # what the host sends
            garbled = "_c(%r,%r)" % (code.replace("made", "mad\xe9"), check)
            with pytest.raises(repl.TransportExecError) as refused:
                repl.run(garbled)
            assert "garbled command" in refused.value.error_output
            assert not list(board.dir.glob("mad*"))
            repl.run("_c(%r,%r)" % (code, check))  # the same command, whole
            assert [p.name for p in board.dir.glob("mad*")] == ["made"]
        finally:
            repl.close()


@pytest.mark.parametrize("line", sorted(NOISY))
def test_a_noisy_line_flashes_verified_or_fails_clearly_never_half(tmp_path, bundle, key_a, config, line):
    with VirtualBoard(tmp_path / "board", faults=NOISY[line]) as noisy:
        error = None
        try:
            result = flash(noisy.port, bundle, config=config, keys=[key_a], wait_agent=False)
        except FlashError as exc:
            result, error = None, str(exc)
            assert "\n" not in exc.message  # one readable line (and a hint), not a traceback
        stats = noisy.stats
    assert stats["in"]["corrupted"] + stats["out"]["corrupted"] > 0  # the faults really happened
    on_flash = _on_flash(noisy, bundle)
    if line == "noisy":
        assert result is not None and result.retries > 0, error
        assert on_flash == _hashes(bundle)  # every hash verified
    else:
        assert result is None
        assert set(on_flash.values()) == {None}  # nothing switched in: the board had nothing
    with VirtualBoard(tmp_path / "board") as quiet:
        if result is not None:  # a whole agent boots
            with _session(quiet, key_a) as dev:
                assert dev.get("./DevInfo/DevId")


def test_a_power_cut_during_a_flash_leaves_the_old_agent_or_the_new_one(tmp_path, bundle, key_a, config):
    folder = tmp_path / "board"
    with VirtualBoard(folder) as board:
        assert flash(board.port, bundle, config=config, keys=[key_a]).ok
    changed = _tweaked(bundle, tmp_path / "v2", "/main.py", b"# v2\n")
    for cut_after in (0.5, 1.5, 3.0):
        with VirtualBoard(folder, baud=115200) as board:
            outcome = []

            def run():
                try:
                    outcome.append(flash(board.port, changed, config=config, keys=[key_a],
                                         principal="ServerA", wait_agent=False))
                except Exception as exc:  # the cut shows as a FlashError (or a transport error)
                    outcome.append(exc)

            worker = threading.Thread(target=run)
            worker.start()
            time.sleep(cut_after)
            board.restart(wait_ready=False)  # power cut mid-flash, then power on
            worker.join(60)
            assert not worker.is_alive()
        with VirtualBoard(folder) as after:
            with _session(after, key_a) as dev:
                assert dev.get("./DevInfo/DevId")
        assert _on_flash(after, changed) in (_hashes(bundle), _hashes(changed))


def test_cli_flashes_several_boards_at_once_with_a_summary(tmp_path, bundle, key_a, config):
    import subprocess
    import sys

    cfg = tmp_path / "device.json"
    cfg.write_text(json.dumps(config))
    with VirtualBoard(tmp_path / "one") as one, VirtualBoard(tmp_path / "two") as two:
        proc = subprocess.run(
            [sys.executable, "-m", "dmagent.host_tools.cli", "flash", one.port, two.port, "--bundle", str(bundle.dir),
             "--config", str(cfg), "--key", str(key_a)],
            capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "flash summary" in proc.stdout
        assert proc.stdout.count(" ok ") >= 2
        ids = set()
        for board in (one, two):
            with _session(board, key_a) as dev:
                ids.add(dev.get("./DevInfo/DevId"))
        assert len(ids) == 2  # each board got its own identity
