"""The virtual board behaves like a MicroPython board on a serial port.

Each test powers a board on a fresh folder (about 0.2 s) and talks to it through its
pseudo-terminal: pyserial for the friendly REPL, mpremote's SerialTransport for the raw
REPL, the mpremote command itself as a subprocess.
"""

import subprocess
import sys
import time

import pytest

serial = pytest.importorskip("serial")

from dmagent.host_tools.vboard import board as vboard  # noqa: E402
from dmagent.host_tools.cli.vboard import vboard_command  # noqa: E402
from dmagent.host_tools.vboard.board import Faults, VirtualBoard, _FaultyLine  # noqa: E402

try:
    vboard.ensure_node_runtime(log=lambda msg: None)
except vboard.VboardError as exc:  # pragma: no cover - machines without Node.js
    pytest.skip("virtual board unavailable: %s" % exc, allow_module_level=True)


def read_until(ser, marker, timeout=5.0):
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(marker):
        if time.monotonic() > deadline:
            raise AssertionError("no %r within %gs; got %r" % (marker, timeout, data[-300:]))
        data += ser.read(max(1, ser.in_waiting))
    return data


def read_quiet(ser, quiet=0.5, timeout=10.0):
    """Everything that arrives until the line has been quiet for `quiet` seconds."""
    data = b""
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while time.monotonic() - last < quiet and time.monotonic() < deadline:
        chunk = ser.read(max(1, ser.in_waiting))
        if chunk:
            data += chunk
            last = time.monotonic()
    return data


def friendly(ser):
    """To a clean friendly prompt, whatever the board was doing."""
    ser.write(b"\r\x03\x02")
    time.sleep(0.2)
    ser.reset_input_buffer()
    ser.write(b"\r")
    read_until(ser, b">>> ")


@pytest.fixture
def board(tmp_path):
    with VirtualBoard(tmp_path / "flash") as b:
        yield b


@pytest.fixture
def console(board):
    with serial.Serial(board.port, 115200, timeout=0.05) as ser:
        friendly(ser)
        yield ser


def transport(board):
    from mpremote.transport_serial import SerialTransport

    return SerialTransport(board.port, baudrate=115200)


# --- REPL ------------------------------------------------------------------------------------
def test_friendly_repl_answers(console):
    console.write(b"1+1\r")
    assert read_until(console, b">>> ") == b"1+1\r\n2\n>>> "


def test_raw_repl_exec_and_files_through_mpremote_transport(board):
    pytest.importorskip("mpremote")
    t = transport(board)
    try:
        t.enter_raw_repl()
        assert t.exec("print(6 * 7)") == b"42\n"
        payload = bytes(range(256)) * 8
        t.fs_writefile("data.bin", payload)
        assert bytes(t.fs_readfile("data.bin")) == payload
        t.fs_mkdir("lib")
        t.fs_writefile("lib/mod.py", b"VALUE = 5\n")
        assert t.exec("import mod; print(mod.VALUE)") == b"5\n"  # /lib is on sys.path
        names = [name for name, *_ in t.fs_listdir("")]
        assert {"data.bin", "lib"} <= set(names)
        t.exit_raw_repl()
    finally:
        t.close()
    # the board's flash is the host folder, written through
    assert (board.dir / "data.bin").read_bytes() == payload
    assert (board.dir / "lib" / "mod.py").read_bytes() == b"VALUE = 5\n"


def test_mpremote_command_fs_ls_and_exec(board):
    pytest.importorskip("mpremote")
    (board.dir / "hello.txt").write_text("hi\n")
    board.restart()  # the folder is read at power-on
    mpremote = [sys.executable, "-m", "mpremote", "connect", board.port]
    ls = subprocess.run(mpremote + ["fs", "ls"], capture_output=True, text=True, timeout=30)
    assert ls.returncode == 0, ls.stderr
    assert "hello.txt" in ls.stdout
    run = subprocess.run(mpremote + ["exec", "print(1)"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "1"


def test_soft_reset_runs_boot_then_main(board):
    (board.dir / "boot.py").write_text("print('boot ran')\n")
    (board.dir / "main.py").write_text("import sys\nprint('main ran', 'vboard_hal' in sys.modules)\n")
    board.restart()
    with serial.Serial(board.port, 115200, timeout=0.05) as ser:
        friendly(ser)
        ser.write(b"\x04")  # Ctrl-D at an empty prompt
        out = read_until(ser, b">>> ")
    assert b"MPY: soft reboot\r\n" in out
    assert out.index(b"soft reboot") < out.index(b"boot ran") < out.index(b"main ran True")
    assert b"MicroPython v1.27.0" in out  # the banner, after main.py


def test_power_cycle_keeps_files_and_loses_ram(board):
    pytest.importorskip("mpremote")
    t = transport(board)
    try:
        t.enter_raw_repl()
        t.fs_writefile("keep.txt", b"kept across power cycles")
        t.exec("import builtins; builtins.marker = 1")
    finally:
        t.close()
    board.restart()
    t = transport(board)
    try:
        t.enter_raw_repl(soft_reset=False)
        assert bytes(t.fs_readfile("keep.txt")) == b"kept across power cycles"
        assert t.eval("hasattr(__import__('builtins'), 'marker')") is False
    finally:
        t.close()


def test_ctrl_c_interrupts_busy_loop(console):
    # a loop that never calls out: the board ends the interpreter and resumes the REPL
    console.write(b"while True: pass\r")
    read_until(console, b"... ")
    console.write(b"\r")
    time.sleep(0.3)
    console.write(b"\x03")
    out = read_until(console, b">>> ")
    assert b"KeyboardInterrupt" in out
    console.write(b"2+3\r")
    assert read_until(console, b">>> ").endswith(b"5\n>>> ")


def test_ctrl_c_interrupts_printing_loop_and_keeps_state(console):
    # a loop that prints is interrupted in place: its globals survive
    console.write(b"n = 0\r")
    read_until(console, b">>> ")
    console.write(b"while True: n += 1; print(n, end=' ')\r\r")
    time.sleep(0.3)
    console.write(b"\x03")
    out = read_until(console, b">>> ", timeout=10)
    assert b"KeyboardInterrupt" in out
    console.reset_input_buffer()
    console.write(b"n > 0\r")
    assert read_until(console, b">>> ").endswith(b"True\n>>> ")


# --- the line ---------------------------------------------------------------------------------
def test_baud_limit_slows_a_large_transfer(tmp_path):
    baud = 38400
    size = 8000
    with VirtualBoard(tmp_path / "flash", baud=baud) as b:
        with serial.Serial(b.port, baud, timeout=0.05) as ser:
            friendly(ser)
            ser.write(b"print('x' * %d)\r" % size)
            start = time.monotonic()
            out = read_until(ser, b">>> ", timeout=20)
            elapsed = time.monotonic() - start
    assert out.count(b"x") >= size
    rate = len(out) / elapsed  # bytes/s
    limit = baud / 10.0
    # generous bounds: the pacing keeps it at the limit; a loaded machine only slows it
    assert rate < 1.3 * limit, (rate, limit)
    assert elapsed > 0.7 * size / limit


def test_corruption_at_the_set_rate(tmp_path):
    rate = 0.01
    size = 20000
    faults = Faults.parse("corrupt=%g,seed=7,dir=out" % rate)
    with VirtualBoard(tmp_path / "flash", faults=faults) as b:
        with serial.Serial(b.port, 115200, timeout=0.05) as ser:
            ser.write(b"\r\x03")
            time.sleep(0.3)
            ser.reset_input_buffer()
            ser.write(b"print('A' * %d)\r" % size)
            out = read_quiet(ser)
        stats = b.stats["out"]
    hit = size - out.count(b"A")  # a corrupted 'A' is never an 'A' (XOR with 1..255)
    assert 0.5 * rate * size < hit < 1.5 * rate * size, hit
    assert stats["corrupted"] >= hit - 5 and stats["dropped"] == stats["inserted"] == 0


def test_faults_are_seeded_and_deterministic():
    data = bytes(range(256)) * 40
    spec = "drop=0.01,corrupt=0.01,insert=0.005,seed=3"
    a = _FaultyLine(Faults.parse(spec), "out")
    b = _FaultyLine(Faults.parse(spec), "out")
    out_a = a.apply(data[:5000]) + a.apply(data[5000:])  # chunking does not matter
    assert out_a == b.apply(data)
    assert out_a != _FaultyLine(Faults.parse(spec.replace("seed=3", "seed=4")), "out").apply(data)
    st = a.stats
    assert st["bytes"] == len(data)
    assert len(out_a) == len(data) - st["dropped"] + st["inserted"]
    for key, p in (("dropped", 0.01), ("corrupted", 0.01), ("inserted", 0.005)):
        assert 0.4 * p * len(data) < st[key] < 1.6 * p * len(data), (key, st[key])
    with pytest.raises(ValueError):
        Faults.parse("drop=2")
    with pytest.raises(ValueError):
        Faults.parse("lose=0.1")


# --- the HAL ------------------------------------------------------------------------------------
def test_node_hal_aes_matches_cryptography_on_fips197(board):
    pytest.importorskip("mpremote")
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    plain = bytes.fromhex("00112233445566778899aabbccddeeff")
    vectors = [  # FIPS-197 appendix C.1 and C.3
        (bytes(range(16)), "69c4e0d86a7b0430d8cdb78070b4c55a"),
        (bytes(range(32)), "8ea2b7ca516745bfeafc49904b496089"),
    ]
    t = transport(board)
    try:
        t.enter_raw_repl(soft_reset=False)
        for key, expected in vectors:
            enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
            ours = enc.update(plain) + enc.finalize()
            assert ours.hex() == expected
            got = t.eval("__import__('vboard_hal').aes_ecb_encrypt(%r, %r)" % (key, plain))
            assert got == ours
            back = t.eval("__import__('vboard_hal').aes(%r, 1).decrypt(%r)" % (key, ours))
            assert back == plain
        assert len(t.eval("__import__('vboard_hal').urandom(32)")) == 32
        used, free = t.eval("__import__('vboard_hal').heap()")
        assert 0 < used and free > 0
    finally:
        t.close()


def test_the_reset_button_power_cycles_the_board_from_the_command_line(board):
    from click.testing import CliRunner

    with serial.Serial(board.port, 115200, timeout=0.05) as ser:
        friendly(ser)
        ser.write(b"import builtins; builtins.marker = 1\r")
        read_until(ser, b">>> ")
        result = CliRunner().invoke(vboard_command, ["--reset", board.port])
        assert result.exit_code == 0, result.output
        read_until(ser, b">>> ", timeout=10)  # the board came up again
        friendly(ser)
        ser.write(b"hasattr(builtins, 'marker')\r")
        assert b"NameError" in read_until(ser, b">>> ")  # RAM is gone: even the import


def test_reset_of_a_port_with_no_virtual_board_says_so_in_one_line(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(vboard_command, ["--reset", str(tmp_path / "ttyNothing")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: no virtual board on %s (is `dmagent vboard` still running?)" % (tmp_path / "ttyNothing")]
