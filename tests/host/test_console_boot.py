"""A console board at boot: what a client on the line can and cannot do to it.

Real parts only: the ESP32 console board (boards/esp32: boot.py, main.py, dmboard.mpy from
the bundle) on the MicroPython device runtime at a board's 110k (agents.TEST_HEAP) with a raw
pseudo-terminal as its console (a raw pty carries Ctrl-C as the byte 0x03, as a board's UART does), and the
virtual board (the WebAssembly build, whose UART turns 0x03 into an interrupt whenever
Python has Ctrl-C on). A "gateway" polls `info` through a reset with Ctrl-C bytes and
garbage between its frames; a board with keys must answer it and never drop to the REPL.
"""

import json
import os
import shutil
import subprocess
import threading
import time
import tty

import pytest

from dmagent.agent import proto as P
from dmagent.agent.escape import ESCAPE
from dmagent.firmware_build.bundle import build
from dmagent.host_tools.client import wire
from dmagent.host_tools.client.device import Device
from dmagent.host_tools.client.transport import FdTransport
from dmagent.host_tools.runtime import micropython as mpy_runtime
from tests.host.agents import DEMO_CONFIG, TEST_HEAP

KEY = bytes(range(0xA0, 0xB0))
KEY_DOC = {"principal": "ServerA", "key": KEY.hex()}
FIRST_ANSWER_S = 1.0  # the rule: answered within a second of the agent being up


def needs_runtime():
    try:
        mpy_runtime.command()
    except mpy_runtime.RuntimeMissing as exc:
        pytest.skip(str(exc))


def _config(**extra):
    cfg = json.loads(DEMO_CONFIG.read_text())
    cfg["device"]["devid"] = "urn:dmagent:console-test"
    cfg.pop("insecure", None)
    cfg["security"] = {"owners": ["ServerA"]}  # whose Exec gives the console back (docs/security.md)
    cfg.update(extra)
    return cfg


def _provision(folder, bundle, config, keyed=True):
    """A board's flash as `dmagent flash` leaves it: the bundle, the config, a key file."""
    shutil.copytree(bundle.dir / "files", folder, dirs_exist_ok=True)
    (folder / "dmagent.json").write_text(json.dumps(config))
    if keyed:
        (folder / "keys").mkdir(exist_ok=True)
        (folder / "keys" / "ServerA.key").write_text(json.dumps(KEY_DOC))


class Gateway(threading.Thread):
    """Polls `info` every 50 ms with Ctrl-C bytes, a frame holding 0x03s and garbage between
    its requests; notes when the board said it serves, the first answer after that, and
    everything the board said (since mark())."""

    def __init__(self, write, read):
        threading.Thread.__init__(self, daemon=True)
        self.write, self.read = write, read
        self.heard = bytearray()
        self.answered = None  # time.monotonic() of the first 200
        self.up = None  # ... of the ready line (the agent serves from here)
        self.done = threading.Event()

    def mark(self):
        """From here on: a reset was pressed; what the board said before is forgotten."""
        self.heard = bytearray()
        self.up = None

    def run(self):
        reader = wire.FrameReader()
        rid = 3
        while not self.done.is_set() and self.answered is None:
            request = wire.encode_message({P.K_ID: rid, P.K_OP: P.OP_INFO})
            assert b"\x03" in request  # the request id and the kind byte: 0x03s in a frame
            try:
                self.write(b"\x03\x00" + request + b"\x03\x03 noise \x03\x00")
            except OSError:
                pass
            until = time.monotonic() + 0.05
            while time.monotonic() < until and self.answered is None:
                data = self.read(0.01)
                self.heard += data
                if self.up is None and b"dmagent: serving" in self.heard:
                    self.up = time.monotonic()
                for kind, body in reader.feed(data):
                    if self.up is not None and kind == P.KIND_PLAIN and wire.decode_message(body).get(P.K_STATUS) == 200:
                        self.answered = time.monotonic()
            rid = (rid + 0x100) & 0x3FFFFFFF


# --- the ESP32 console board on the device runtime --------------------------------------------
@pytest.fixture(scope="module")
def esp32(tmp_path_factory):
    return build("esp32", tmp_path_factory.mktemp("bundle") / "esp32")


class PtyBoard:
    """boards/esp32 on the device runtime, its console a raw pty that outlives resets."""

    def __init__(self, folder, heap=TEST_HEAP["micropython"]):
        self.folder, self.heap = folder, heap
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.proc = None

    def power_on(self):
        # relative paths, as on a board: MicroPython keeps its module paths in the heap
        self.proc = mpy_runtime.spawn("main.py", heap=self.heap, paths=["lib"],
                                      compiled=False, cwd=str(self.folder), stdin=self.slave,
                                      stdout=self.slave, stderr=subprocess.PIPE)
        return time.monotonic()

    def power_off(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def write(self, data):
        os.write(self.master, data)

    def read(self, timeout):
        return FdTransport(self.master).read(timeout)

    def close(self):
        self.power_off()
        os.close(self.master)
        os.close(self.slave)


def _read_until(board, marker, timeout):
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while marker not in seen:
        if time.monotonic() > deadline:
            raise AssertionError("no %r within %ss; got %r" % (marker, timeout, bytes(seen)))
        seen += board.read(0.1)
    return bytes(seen)


@pytest.fixture
def pty_board(tmp_path):
    needs_runtime()
    board = PtyBoard(tmp_path / "fs")
    yield board
    board.close()


def test_esp32_board_at_the_test_heap_boots_with_keys_wraps_them_and_serves_a_keyed_session(esp32, pty_board):
    _provision(pty_board.folder, esp32, _config())
    pty_board.power_on()
    said = _read_until(pty_board, b"dmagent: serving console\n\x00", 30)
    assert b"starting in" not in said  # rule: a board with keys has no escape window
    heap = [line for line in said.decode(errors="replace").splitlines() if "heap" in line]
    print("ESP32 console board on the device runtime at %s:" % TEST_HEAP["micropython"], heap)
    # rule: the key file on the board is no longer the key (wrapped under the device key)
    for path in pty_board.folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert KEY not in data and KEY.hex().encode() not in data, path
    with Device.over(FdTransport(pty_board.master), timeout=2.0, principal="ServerA", key=KEY) as dev:
        assert dev.get("./DevInfo/DevId") == "urn:dmagent:console-test"
        dev.add("./Probe", "\x03\x04 binary-safe", "chr")  # Ctrl-C in a frame: data
        assert dev.get("./Probe") == "\x03\x04 binary-safe"
    pty_board.power_off()  # a power cut: the wrapped key and the device key survive it
    pty_board.power_on()
    _read_until(pty_board, b"dmagent: serving console\n\x00", 30)
    with Device.over(FdTransport(pty_board.master), timeout=2.0, principal="ServerA", key=KEY) as dev:
        assert dev.get("./Probe") == "\x03\x04 binary-safe"
        assert dev.exec("./DevDetail/Ext/Repl")[0] == 200
        assert b"the console is the REPL again" in _read_until(pty_board, b"REPL again", 5)
    assert pty_board.proc.wait(10) == 0


def test_esp32_board_with_keys_answers_a_gateway_polling_through_a_reset(esp32, pty_board):
    _provision(pty_board.folder, esp32, _config())
    gateway = Gateway(pty_board.write, pty_board.read)
    gateway.start()  # polling before the board is even on
    time.sleep(0.2)
    reset = pty_board.power_on()
    gateway.join(30)
    assert gateway.answered is not None, bytes(gateway.heard[-400:])
    said = bytes(gateway.heard)
    up = said.index(b"dmagent: serving console")
    assert b"this is the REPL" not in said and b">>>" not in said
    print("device runtime: reset to first answer %.3f s, ready line to first answer %.3f s"
          % (gateway.answered - reset, gateway.answered - gateway.up))
    assert gateway.answered - gateway.up < FIRST_ANSWER_S
    assert pty_board.proc.poll() is None  # still running: not knocked over
    with Device.over(FdTransport(pty_board.master), timeout=2.0, principal="ServerA", key=KEY) as dev:
        assert dev.get("./DevInfo/DevId") == "urn:dmagent:console-test"
    assert up >= 0


def test_esp32_board_escapes_to_the_repl_only_on_the_sequence_where_config_opens_a_window(esp32, pty_board):
    _provision(pty_board.folder, esp32, _config(escape_window_ms=3000))
    pty_board.power_on()
    _read_until(pty_board, b"for the REPL", 30)
    request = wire.encode_message({P.K_ID: 3, P.K_OP: P.OP_INFO})
    pty_board.write(b"\x03\x03" + request + b"\x00DMAGENT-REPL" + request)  # nothing of these escapes
    time.sleep(0.3)
    pty_board.write(ESCAPE)
    said = _read_until(pty_board, b"this is the REPL", 5)
    assert b"not started" in said
    assert pty_board.proc.wait(10) == 0  # main.py returned: on a board, the REPL


def test_esp32_board_with_keys_that_cannot_boot_halts_and_never_gives_the_repl(esp32, pty_board):
    _provision(pty_board.folder, esp32, _config())
    pty_board.power_on()
    _read_until(pty_board, b"dmagent: serving console\n\x00", 30)
    pty_board.power_off()
    (pty_board.folder / "state" / "secrets").unlink()  # the device key is gone: no key unwraps
    pty_board.power_on()
    said = _read_until(pty_board, b"keeps its console closed", 30)
    assert b"not under this device's key" in said and b"Traceback" not in said
    time.sleep(0.5)
    assert pty_board.proc.poll() is None  # halted: main.py did not return to a REPL


def test_esp32_board_keeps_what_arrives_in_its_window_for_the_agent(esp32, pty_board):
    _provision(pty_board.folder, esp32, _config(escape_window_ms=1000))
    pty_board.power_on()
    _read_until(pty_board, b"for the REPL", 30)
    pty_board.write(b"\x03\x00" + wire.encode_message({P.K_ID: 77, P.K_OP: P.OP_INFO}))  # sent once
    said = _read_until(pty_board, b"dmagent: serving console\n\x00", 10)
    assert b"this is the REPL" not in said
    reader = wire.FrameReader()
    deadline = time.monotonic() + 2
    answers = [wire.decode_message(body) for _, body in reader.feed(said.split(b"serving console\n\x00")[1])]
    while not answers and time.monotonic() < deadline:
        answers = [wire.decode_message(body) for _, body in reader.feed(pty_board.read(0.1))]
    assert answers and answers[0][P.K_ID] == 77 and answers[0][P.K_STATUS] == 200


# --- the virtual board ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def vbundle(tmp_path_factory):
    from dmagent.host_tools.vboard.board import ensure_node_runtime

    ensure_node_runtime(log=lambda line: None)
    return build("virtual", tmp_path_factory.mktemp("vbundle") / "virtual")


class _Serial:
    def __init__(self, port):
        import serial

        self.ser = serial.Serial(port, 115200, timeout=0)

    def write(self, data):
        self.ser.write(data)

    def read(self, timeout):
        time.sleep(timeout)
        return self.ser.read(self.ser.in_waiting or 1)

    def close(self):
        self.ser.close()


def test_virtual_board_with_keys_answers_a_gateway_polling_through_a_reset(tmp_path, vbundle):
    from dmagent.host_tools.vboard.board import VirtualBoard, press_reset

    folder = tmp_path / "board"
    folder.mkdir()
    _provision(folder, vbundle, _config())
    with VirtualBoard(folder) as board:
        line = _Serial(board.port)
        try:
            gateway = Gateway(line.write, line.read)
            gateway.start()
            time.sleep(0.3)
            reset = time.monotonic()
            gateway.mark()
            assert press_reset(board.port)
            gateway.join(30)
            assert gateway.answered is not None, bytes(gateway.heard[-400:])
            said = bytes(gateway.heard)
            assert b"this is the REPL" not in said and b">>>" not in said and b"Traceback" not in said
            print("virtual board: reset to first answer %.3f s, ready line to first answer %.3f s"
                  % (gateway.answered - reset, gateway.answered - gateway.up))
            assert gateway.answered - gateway.up < FIRST_ANSWER_S
        finally:
            line.close()
        with Device.open("serial://%s" % board.port, timeout=2.0, principal="ServerA", key=KEY) as dev:
            assert dev.get("./DevInfo/DevId") == "urn:dmagent:console-test"
        # rule: no file on the board holds the key, in bytes or in hex; the session above
        # ran on the unwrapped one
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert KEY not in data and KEY.hex().encode() not in data, path
        board.restart()  # a power cycle: the wrapped key still unwraps
        with Device.open("serial://%s" % board.port, timeout=2.0, principal="ServerA", key=KEY) as dev:
            assert dev.info()["principal"] == "ServerA"


def test_virtual_board_escapes_only_on_the_sequence_where_config_opens_a_window(tmp_path, vbundle):
    from dmagent.host_tools.vboard.board import VirtualBoard

    folder = tmp_path / "board"
    folder.mkdir()
    _provision(folder, vbundle, _config(escape_window_ms=3000))
    with VirtualBoard(folder) as board:
        board.restart(wait_ready=False)
        line = _Serial(board.port)
        try:
            seen = bytearray()
            deadline = time.monotonic() + 20
            while b"for the REPL" not in seen and time.monotonic() < deadline:
                seen += line.read(0.05)
            request = wire.encode_message({P.K_ID: 3, P.K_OP: P.OP_INFO})
            line.write(b"\x03\x03" + request + b"\x00DMAGENT-REPL" + request)
            time.sleep(0.5)
            seen += line.read(0.1)
            assert b"this is the REPL" not in seen
            line.write(ESCAPE)
            while b"this is the REPL" not in seen and time.monotonic() < deadline:
                seen += line.read(0.05)
            assert b"not started; this is the REPL" in seen
            line.write(b"print(6*7)\r")
            answer = bytearray()
            while b"42" not in answer and time.monotonic() < deadline:
                answer += line.read(0.05)
            assert b"42" in answer
        finally:
            line.close()
