"""`dmagent build --firmware`: the Unix port with the agent frozen in, built here from Debian's
pinned source; the esp32 build's one line where ESP-IDF is missing; and every way a firmware
build can fail (a tool missing, a download that fails, a bad checksum, a board with no
firmware manifest), each one line, each leaving the last build where it was.
"""

import json
import subprocess

import pytest
from click.testing import CliRunner

from dmagent.firmware_build import apt, source, unix_port
from dmagent.firmware_build.bundle import sha256
from dmagent.host_tools.cli.build import build_command
from dmagent.host_tools.runtime import micropython as mpy_runtime


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A firmware build of board unix (cached by make setup: seconds, not minutes)."""
    out = tmp_path_factory.mktemp("fw") / "unix"
    res = CliRunner().invoke(build_command, ["--board", "unix", "--firmware", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def _one_error_line(res):
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and lines and lines[-1].startswith("error: "), res.output
    assert "Traceback" not in res.output
    return lines[-1]


def test_unix_firmware_has_the_agent_frozen_and_is_named_in_the_manifest(built):
    out, text = built
    manifest = json.loads((out / "manifest.json").read_text())
    fw = manifest["firmware_file"]
    binary = out / fw["path"]
    assert fw["port"] == "unix" and fw["size"] == binary.stat().st_size == len(binary.read_bytes())
    assert fw["sha256"] == sha256(binary.read_bytes())
    assert "firmware %s: %d bytes" % (binary, fw["size"]) in " ".join(text.split())
    # Rule: the firmware runs the agent from its frozen modules, 32-bit, with cryptolib (as an ESP32).
    probe = subprocess.run([str(binary), "-c", "import sys, cryptolib, agent.app as a; "
                            "print(a.__file__, sys.maxsize)"], capture_output=True, text=True,
                           env={"MICROPYPATH": ".frozen"})
    assert probe.stdout.split() == ["agent/app.py", str(2 ** 31 - 1)], probe.stderr
    assert 'package("agent", base_path="freeze", opt=3)' in (out / "manifest.py").read_text()


def test_the_frozen_runtime_is_keyed_by_the_agent_it_freezes(monkeypatch):
    board = __import__("firmware_build.bundle", fromlist=["load_board"]).load_board("unix")
    key = unix_port.firmware_key(board)
    assert unix_port.built_binary(board) is not None  # make setup built this checkout's
    monkeypatch.setattr(unix_port, "FLAGS", unix_port.FLAGS + ("MICROPY_PY_FOO=1",))
    assert unix_port.firmware_key(board) != key and unix_port.built_binary(board) is None


def test_a_build_without_gcc_says_so_in_one_line_and_keeps_the_last_build(built, tmp_path, monkeypatch):
    out, _ = built
    before = (out / "manifest.json").read_bytes()
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcc, no make
    res = CliRunner().invoke(build_command, ["--board", "unix", "--firmware", "--out", str(out)])
    assert "needs gcc" in _one_error_line(res)
    assert (out / "manifest.json").read_bytes() == before and (out / "firmware" / "micropython").is_file()


def test_a_source_that_fails_its_pinned_sha256_is_refused_and_the_last_build_stays(built, tmp_path, monkeypatch):
    out, _ = built
    before = (out / "manifest.json").read_bytes()
    monkeypatch.setattr(source, "CACHE", tmp_path / "cache")  # nothing cached: fetch for real
    name, version, pins, tarball, place, pool = source.SOURCES[0]
    wrong = dict(pins, **{tarball: "0" * 64})
    monkeypatch.setattr(source, "SOURCES", ((name, version, wrong, tarball, place, pool),) + source.SOURCES[1:])
    res = CliRunner().invoke(build_command, ["--board", "unix", "--firmware", "--out", str(out)])
    line = _one_error_line(res)
    assert "%s does not match its pinned sha256" % tarball in line, line
    assert (out / "manifest.json").read_bytes() == before
    assert not (tmp_path / "cache" / ("micropython-src-" + source.VERSION) / ".complete").exists()


def test_when_apt_cannot_have_the_index_the_pinned_files_come_from_the_pool(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "CACHE", tmp_path / "cache")

    def index_fails(self):  # as a mirror mid-sync does: its Sources file fails its hash
        raise apt.AptError("apt-get update (private lists) failed: E: simulated hash sum mismatch")

    monkeypatch.setattr(apt.PrivateApt, "update", index_fails)
    said = []
    top = source.tree(said.append)
    assert any("from the pool instead" in line for line in said), said
    assert (top / "ports" / "unix" / "Makefile").is_file() and (top / "lib" / "mbedtls" / "library" / "aes.c").is_file()


def test_a_failed_download_is_one_line_and_the_last_build_stays(built, tmp_path, monkeypatch):
    out, _ = built
    before = (out / "manifest.json").read_bytes()
    monkeypatch.setattr(source, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(source, "debian_mirror", lambda: "http://127.0.0.1:9/debian")  # nothing listens
    res = CliRunner().invoke(build_command, ["--board", "unix", "--firmware", "--out", str(out)])
    line = _one_error_line(res)
    # apt's index first, then the pool: neither answers
    assert "cannot get MicroPython's source: cannot download http://127.0.0.1:9/debian/pool/" in line, line
    assert (out / "manifest.json").read_bytes() == before


def test_a_board_without_a_firmware_manifest_is_one_line(tmp_path):
    res = CliRunner().invoke(build_command, ["--board", "virtual", "--firmware", "--out", str(tmp_path / "v")])
    assert "board virtual has no firmware manifest" in _one_error_line(res)
    folder = tmp_path / "myboard"
    folder.mkdir()
    res = CliRunner().invoke(build_command, ["--board", str(folder), "--firmware"])
    assert "no board" in _one_error_line(res)
    assert not (tmp_path / "v").exists()


def test_esp32_firmware_without_esp_idf_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("IDF_PATH", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    res = CliRunner().invoke(build_command, ["--board", "esp32", "--firmware", "--out", str(tmp_path / "e")])
    line = _one_error_line(res)
    assert "esp32 firmware needs ESP-IDF" in line and "idf.py" in line and "IDF_PATH" in line, line
    assert not (tmp_path / "e").exists()


def test_rp2_firmware_without_the_arm_toolchain_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    res = CliRunner().invoke(build_command, ["--board", "rp2", "--firmware", "--out", str(tmp_path / "r")])
    assert "rp2 firmware needs arm-none-eabi-gcc" in _one_error_line(res)
    assert not (tmp_path / "r").exists()


def test_the_rp2_firmware_takes_its_romfs_partition_from_the_file_system(tmp_path):
    from dmagent.firmware_build.rp2_port import board_definition

    stock = tmp_path / "RPI_PICO_W"
    stock.mkdir()
    (stock / "mpconfigboard.h").write_text("#define MICROPY_HW_FLASH_STORAGE_BYTES          (848 * 1024)\n")
    (stock / "pins.csv").write_text("LED,WL_GPIO0\n")
    board_definition(stock, tmp_path / "out", 131072)
    header = (tmp_path / "out" / "mpconfigboard.h").read_text()
    assert "MICROPY_HW_FLASH_STORAGE_BYTES (%d)" % (848 * 1024 - 131072) in header  # the code space keeps its size
    assert "#define MICROPY_HW_ROMFS_BYTES (131072)" in header and (tmp_path / "out" / "pins.csv").exists()


def test_the_mirror_is_the_one_the_system_apt_sources_name(tmp_path):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    with pytest.raises(apt.AptError, match="no Debian mirror"):
        apt.debian_mirror(etc)
    (etc / "sources.list").write_text("# deb http://commented.example/debian bookworm main\n"
                                      "deb [arch=amd64] http://mirror-a.example/debian-security bookworm-security main\n")
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror-b.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror-b.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n")
    assert apt.debian_mirror(etc) == "http://mirror-b.example/debian"
    (etc / "sources.list").write_text("deb http://mirror-a.example/debian bookworm main\n")
    assert apt.debian_mirror(etc) == "http://mirror-a.example/debian"  # apt's order: sources.list first


def test_no_mirror_host_is_written_in_the_code():
    from tests.host.agents import ROOT

    for folder in ("firmware_build", "host_tools"):
        for path in (ROOT / folder).rglob("*.py"):
            assert "debian.org" not in path.read_text(), path


def test_mpy_run_on_the_frozen_runtime(tmp_path):
    from tests.host.agents import dmagent_argv

    script = tmp_path / "which.py"
    script.write_text("import agent.frame\nprint(agent.frame.__file__)\n")
    proc = subprocess.run(dmagent_argv("mpy", "run", "--runtime", mpy_runtime.FROZEN, str(script)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "agent/frame.py", proc.stderr


def test_setup_without_gcc_multilib_and_no_root_names_the_command(monkeypatch):
    monkeypatch.setattr(unix_port, "_can_build_32bit", lambda: False)
    monkeypatch.setattr(unix_port.os, "geteuid", lambda: 1000)
    said = []
    assert unix_port.install_multilib(said.append) is False
    assert len(said) == 1 and "sudo apt-get install gcc-multilib" in said[0]


def test_serve_frozen_refuses_a_bundle_in_one_line(tmp_path):
    from tests.host.agents import dmagent_argv

    proc = subprocess.run(dmagent_argv("serve", "--runtime", mpy_runtime.FROZEN, "--bundle", str(tmp_path),
                                       "--tcp", "127.0.0.1:1"), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--bundle needs --runtime micropython" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_esp32_board_on_frozen_firmware_serves_its_console_at_110k(tmp_path):
    """The ESP32 board's own files with the agent frozen (no /lib/agent on its file system):
    at a board's 110k the console serves, with room for a tree."""
    import shutil

    from dmagent.firmware_build.bundle import build
    from dmagent.host_tools.client.device import Device
    from dmagent.host_tools.client.transport import FdTransport
    from tests.host.agents import DEMO_CONFIG, console_board
    from tests.host.test_build import _read_until

    fs = tmp_path / "fs"
    shutil.copytree(build("esp32", tmp_path / "esp32").dir / "files", fs)
    shutil.rmtree(fs / "lib" / "agent")
    config = dict(json.loads(DEMO_CONFIG.read_text()), insecure=True, escape_window_ms=200)
    (fs / "dmagent.json").write_text(json.dumps(config))
    with console_board(fs, [fs / "lib"], runtime=mpy_runtime.FROZEN) as master:
        _read_until(master, b"dmagent: serving console\n", 20)
        with Device(FdTransport(master)) as dev:
            assert dev.info()["heap_free"] > 60000
            dev.hello("ServerA")
            for i in range(300):
                dev.add("./P%d" % i, i, "int")
            assert dev.get("./P299") == 299
