"""`dmagent flash`: the pieces on their own, then whole flashes onto the virtual board.

The virtual board (host_tools.vboard.board) is real MicroPython behind a pseudo-terminal: the raw
REPL, soft reset into boot.py/main.py, a file system kept in a folder, line faults on demand.
"""

import json
import os
import threading
import time
import tty
from unittest import mock

import pytest

from dmagent.firmware_build import bundle as B
from dmagent.host_tools.flash import deploy as F
from dmagent.host_tools.flash import firmware, plan, provision, repl
from dmagent.host_tools.flash.errors import FlashError

ROOT = B.ROOT


@pytest.fixture(scope="module")
def esp32(tmp_path_factory):
    return B.build("esp32", tmp_path_factory.mktemp("bundle") / "esp32")


# --- config, identity, keys --------------------------------------------------------------------
def test_device_config_layers_identity(esp32):
    cfg = provision.device_config(esp32, None, None, None, "a1b2c3")
    assert cfg["device"]["devid"] == "urn:dmagent:esp32-a1b2c3"
    assert cfg["device"]["mod"] == "esp32" and cfg["console"] is True  # the board's defaults
    # What the board has is kept when no config is given; its DevId too.
    existing = json.dumps({"device": {"devid": "urn:x:1"}, "insecure": True})
    assert provision.device_config(esp32, existing, None, None, "ff") == {"device": {"devid": "urn:x:1"}, "insecure": True}
    # A given config goes over the board's defaults and keeps the board's DevId ...
    cfg = provision.device_config(esp32, existing, {"device": {"man": "ACME"}, "escape_window_ms": 0}, None, "ff")
    assert cfg["device"] == {"devid": "urn:x:1", "man": "ACME", "mod": "esp32", "devtyp": "esp32", "hwv": "esp32"}
    assert cfg["escape_window_ms"] == 0 and "insecure" not in cfg
    # ... and an explicit DevId wins over all.
    assert provision.device_config(esp32, existing, {"device": {"devid": "urn:c"}}, "urn:d", "ff")["device"]["devid"] == "urn:d"


def test_key_files_are_checked(tmp_path):
    good = tmp_path / "a.key"
    good.write_text(json.dumps({"principal": "ServerA", "key": "00" * 16, "created": "2025-01-01"}))
    assert provision.load_key(good) == ("ServerA", good.read_bytes())
    for name, body in (("short", {"principal": "S", "key": "00" * 5}), ("nokey", {"principal": "S"}),
                       ("slash", {"principal": "../x", "key": "00" * 32}), ("text", "not json")):
        path = tmp_path / name
        path.write_text(body if isinstance(body, str) else json.dumps(body))
        with pytest.raises(FlashError):
            provision.load_key(path)
    with pytest.raises(FlashError, match="key file .*missing.key: not found"):
        provision.load_key(tmp_path / "missing.key")


# --- the checks before writing -------------------------------------------------------------------
def test_mpy_mismatch_and_wrong_runtime_are_refused(esp32):
    probe = {"impl": "micropython", "ver": (1, 18, 0), "mpy": 5}
    with pytest.raises(FlashError) as err:
        plan.check_runtime("/dev/ttyX", probe, esp32)
    text = str(err.value)
    assert ".mpy version mismatch" in text and "MicroPython 1.18.0" in text and "v5.0" in text and "v6.3" in text
    assert "hint: flash MicroPython 1.25" in text
    plan.check_runtime("/dev/ttyX", {"impl": "micropython", "ver": (1, 22, 2), "mpy": 0x206}, esp32)  # 6.2: bytecode loads
    with pytest.raises(FlashError, match="not MicroPython"):
        plan.check_runtime("/dev/ttyX", {"impl": "cpython"}, esp32)


def test_not_enough_flash_is_refused_before_writing():
    # statvfs: bsize, frsize, blocks, bfree, bavail, ...: 10 free blocks of 4 KiB
    statvfs = (4096, 4096, 100, 10, 10, 0, 0, 0, 0, 255)
    plan.check_space("p", statvfs, [("/a", None, "x", 4096 * 3)], 100)
    with pytest.raises(FlashError) as err:
        plan.check_space("p", statvfs, [("/a", None, "x", 4096 * 9)], 100)
    assert "not enough flash on p" in str(err.value) and "40 KiB are free" in str(err.value)


def test_garbled_hash_listings_are_rejected():
    parse = repl.parse_hashes(["/a", "/b"])
    good = b"H /a " + b"0" * 64 + b"\nH /b None\nEND\n"
    assert parse(good) == {"/a": "0" * 64, "/b": None}
    for bad in (good.replace(b"END", b""), good.replace(b"0" * 64, b"0" * 63 + b"g"),
                b"H /a " + b"0" * 64 + b"\nEND\n"):
        with pytest.raises(ValueError):
            parse(bad)


# --- firmware through esptool (mocked: no chip here) ----------------------------------------------
def test_firmware_goes_through_esptool_with_progress(tmp_path):
    pytest.importorskip("esptool")
    from esptool.logger import log

    fw = tmp_path / "fw.bin"
    fw.write_bytes(b"\xe9" + b"\0" * 100)
    esp = mock.MagicMock(CHIP_NAME="ESP32", ESP_ROM_BAUD=115200)
    esp.__enter__.return_value = esp
    calls = []

    def write_flash(e, addr_data, **kw):
        calls.append(("write", addr_data))
        for i in range(1, 5):
            log.progress_bar(i, 4)

    seen = []
    with mock.patch("esptool.cmds.detect_chip", return_value=esp) as detect, \
            mock.patch("esptool.cmds.run_stub", side_effect=lambda e: e), \
            mock.patch("esptool.cmds.attach_flash"), \
            mock.patch("esptool.cmds.erase_flash", side_effect=lambda e: calls.append(("erase",))), \
            mock.patch("esptool.cmds.write_flash", side_effect=write_flash), \
            mock.patch("esptool.cmds.reset_chip", side_effect=lambda e, mode: calls.append(("reset", mode))), \
            mock.patch("time.sleep"):
        firmware.flash_firmware("/dev/ttyUSB9", fw, "esp32", "0x1000", 460800, True,
                         lambda stage, done, total: seen.append((stage, done, total)))
        detect.assert_called_once_with("/dev/ttyUSB9")
    esp.change_baud.assert_called_once_with(460800)
    assert calls == [("erase",), ("write", [(0x1000, str(fw))]), ("reset", "hard-reset")]
    assert seen[-1] == ("firmware", 4, 4)

    esp.CHIP_NAME = "ESP32-S3"
    with mock.patch("esptool.cmds.detect_chip", return_value=esp), pytest.raises(FlashError, match="wants esp32"):
        firmware.flash_firmware("/dev/ttyUSB9", fw, "esp32")


# --- ports that are not a board --------------------------------------------------------------------
def test_a_missing_port_says_no_board(esp32):
    with pytest.raises(FlashError) as err:
        F.flash("/dev/ttyDOES-NOT-EXIST", esp32)
    assert "no board on /dev/ttyDOES-NOT-EXIST" in str(err.value) and "dmagent ports" in str(err.value)


def test_a_busy_port_says_busy(esp32):
    import serial

    master, slave = os.openpty()
    path = os.ttyname(slave)
    holder = serial.Serial(path, exclusive=True)
    try:
        with pytest.raises(FlashError) as err:
            F.flash(path, esp32)
        assert "is busy" in str(err.value) and "hint:" in str(err.value)
    finally:
        holder.close()
        os.close(master)
        os.close(slave)


def test_a_silent_port_and_a_chatty_one_get_different_errors(esp32):
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        with pytest.raises(FlashError) as err:
            F.flash(path, esp32)
        assert "no board answers" in str(err.value)
        stop = threading.Event()

        def chatter():  # something that is not a MicroPython REPL
            while not stop.is_set():
                try:
                    if os.read(master, 4096):
                        os.write(master, b"AT OK\r\n")
                except OSError:
                    time.sleep(0.01)

        os.set_blocking(master, False)
        thread = threading.Thread(target=chatter, daemon=True)
        thread.start()
        with pytest.raises(FlashError) as err:
            F.flash(path, esp32)
        stop.set()
        assert "raw REPL on %s cannot be reached" % path in str(err.value)
        assert "DTR" in str(err.value) and "RTS" in str(err.value)
    finally:
        os.close(master)
        os.close(slave)


def test_a_config_the_board_would_refuse_is_refused_before_flashing(tmp_path):
    """Rule: one config validator (agent.config): flash checks what it would write."""
    with pytest.raises(F.FlashError, match="config given: securty: unknown key"):
        F.load_config({"securty": {"owners": ["A"]}})
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"security": {"gateways": {"GW1": "ServerAB"}}}))
    with pytest.raises(F.FlashError, match="security.gateways.GW1: must be a list"):
        F.load_config(path)
    assert F.load_config({"escape_window_ms": 0, "security": {"owners": ["A"]}}) == {"escape_window_ms": 0, "security": {"owners": ["A"]}}


# --- the planner: decisions from hashes alone --------------------------------------------------------
def test_planner_sends_only_changed_files_reuses_verified_copies_and_keeps_keys():
    want = [("/boot.py", None, "b" * 64, 10), ("/main.py", None, "m" * 64, 20), ("/lib/a/x.mpy", None, "x" * 64, 30)]
    have = {"/boot.py": "b" * 64, "/main.py": "old", "/lib/a/x.mpy" + plan.TMP: "x" * 64}
    record = {"bundle": "v1", "files": {"/gone.mpy": "g", "/keys/ServerA.key": "k", "/boot.py": "b" * 64}}
    todo = plan.plan(want, have, record, "v2", "/keys")
    assert todo.skipped == ["/boot.py"]
    assert [p for p, _, _, _ in todo.send] == ["/main.py"]  # x.mpy's verified copy is reused
    assert todo.stale == ["/gone.mpy"]  # a provisioned key stays
    journal = todo.journal([(plan.RECORD + plan.TMP, plan.RECORD)]).decode().splitlines()
    assert journal[-2].endswith("\t/main.py") and journal[-1] == "\t/gone.mpy"  # main.py renamed last
    assert not todo.nothing_to_do
    same = plan.plan(want, {p: d for p, _, d, _ in want}, {"bundle": "v2", "files": {}}, "v2", "/keys")
    assert same.nothing_to_do and same.send == []
