"""boards/rp2 (Pico W): the agent as a ROMFS image (mpremote's format) that runs from /rom.

What runs here: the image is built and read back (by a reader written from the format, and by
MicroPython's own VfsRom on the device runtime), the board's main.py boots from the unpacked
image and serves its console, a too-large image is one line, and a board without a ROMFS
partition (the virtual board) is refused before anything is written. A real Pico W is not.
"""

import json
import shutil

import pytest
from click.testing import CliRunner

from dmagent.firmware_build import mpy, romfs
from dmagent.firmware_build.bundle import build, sha256
from dmagent.host_tools.cli.build import build_command
from dmagent.host_tools.client.device import Device
from dmagent.host_tools.client.transport import FdTransport
from dmagent.host_tools.runtime import micropython as mpy_runtime
from tests.host.agents import DEMO_CONFIG, ROOT, console_board
from tests.host.test_build import _read_until


@pytest.fixture(scope="module")
def rp2(tmp_path_factory):
    return build("rp2", tmp_path_factory.mktemp("rp2") / "rp2")


def test_the_image_holds_the_agent_and_board_modules_as_mpy_and_nothing_else(rp2):
    image = rp2.romfs_image.read_bytes()
    files = romfs.read(image)
    rom = rp2.manifest["romfs"]
    assert rom["size"] == len(image) and rom["sha256"] == sha256(image) and rom["mount"] == "/rom"
    # Rule: every .mpy of the bundle's /lib is in the image at lib/..., byte for byte, as the manifest says.
    assert {"/rom/" + name for name in files} == {e["path"] for e in rom["files"]}
    for entry in rom["files"]:
        data = files[entry["path"][len("/rom/"):]]
        assert len(data) == entry["size"] and sha256(data) == entry["sha256"]
        assert mpy.read_mpy_header(data)[0] == 6
    assert {"lib/agent/app.mpy", "lib/dmboard.mpy", "lib/dmlinks.mpy"} <= set(files)
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "agent").rglob("*.py") if "__pycache__" not in p.parts}
    assert {e["source"] for e in rom["files"] if "/agent/" in e["path"]} == sources
    # on the file system: only what runs by name; the code is in the image
    assert sorted(e["path"] for e in rp2.files) == ["/boot.py", "/main.py"]
    rp2.check()


def test_the_reader_refuses_what_is_not_an_image(rp2):
    image = rp2.romfs_image.read_bytes()
    with pytest.raises(ValueError, match="not a ROMFS image"):
        romfs.read(b"MPY" + image[3:])
    with pytest.raises(ValueError, match="cut short"):
        romfs.read(image[:len(image) // 2])
    from mpremote.romfs import VfsRomWriter

    sneaky = VfsRomWriter()
    sneaky.mkfile("../outside.py", b"x")
    with pytest.raises(ValueError, match="bad name"):
        romfs.read(sneaky.finalise())


def test_micropython_own_romfs_reads_the_image_and_imports_the_agent_from_it(rp2, tmp_path):
    script = tmp_path / "mount.py"
    script.write_text(
        "import sys, vfs\n"
        "with open(%r, 'rb') as f:\n    img = f.read()\n"
        "vfs.mount(vfs.VfsRom(img), '/rom')\n"
        "sys.path[:] = ['.frozen', '/rom/lib']\n"  # the firmware's own modules, and what it adds
        "import agent.app, dmboard, os\n"
        "print(agent.app.__file__, dmboard.__file__, len(os.listdir('/rom/lib/agent')))\n" % str(rp2.romfs_image))
    proc = mpy_runtime.run_file(script, heap="256k", capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    count = len({e["path"].split("/")[4] for e in rp2.manifest["romfs"]["files"] if e["path"].startswith("/rom/lib/agent/")})
    assert proc.stdout.split() == ["/rom/lib/agent/app.mpy", "/rom/lib/dmboard.mpy", str(count)]


def test_rp2_main_boots_from_the_unpacked_image_and_serves_its_console(rp2, tmp_path):
    """The board's files from the bundle, the agent only from the image (unpacked by the reader)."""
    fs = tmp_path / "fs"
    shutil.copytree(rp2.dir / "files", fs)
    rom = tmp_path / "rom"
    romfs.unpack(rp2.romfs_image.read_bytes(), rom)
    config = json.loads(DEMO_CONFIG.read_text())
    config.update(insecure=True, escape_window_ms=200)
    (fs / "dmagent.json").write_text(json.dumps(config))
    # 256k as the esp32 board's console test: at 110k its dmboard start-up runs out (issue 11)
    with console_board(fs, [rom / "lib"], heap="256k") as master:
        _read_until(master, b"dmagent: serving console\n", 20)
        with Device(FdTransport(master)) as dev:
            info = dev.info()
            assert info["devid"] == "urn:dmagent:demo-0001" and info["runtime"] == "micropython"
            dev.hello("ServerA")
            dev.add("./Probe", "\x03\x04 from rom", "chr")
            assert dev.get("./Probe") == "\x03\x04 from rom"


def test_an_image_too_large_for_its_partition_is_one_line_and_the_last_build_stays(rp2, tmp_path):
    board = tmp_path / "tiny"
    shutil.copytree(ROOT / "boards" / "rp2", board)
    spec = json.loads((board / "board.json").read_text())
    spec["files"] = [str((ROOT / "boards" / "rp2" / f).resolve()) for f in spec["files"]]
    spec["romfs"]["bytes"] = 4096
    (board / "board.json").write_text(json.dumps(spec))
    out = tmp_path / "out"
    shutil.copytree(rp2.dir, out)
    before = (out / "manifest.json").read_bytes()
    res = CliRunner().invoke(build_command, ["--board", str(board), "--out", str(out)])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert "the ROMFS image is %d bytes, board rp2's ROMFS partition holds 4096" % rp2.manifest["romfs"]["size"] in lines[0]
    assert (out / "manifest.json").read_bytes() == before


def test_cli_build_names_the_image_and_its_room(tmp_path):
    res = CliRunner().invoke(build_command, ["--board", "rp2", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "ROMFS image %s" % (tmp_path / "b" / "romfs.img") in text and "131072-byte partition" in text


def test_flashing_rp2_onto_a_board_without_romfs_changes_nothing(rp2, tmp_path):
    from dmagent.host_tools.flash.deploy import FlashError, flash
    from dmagent.host_tools.vboard.board import VirtualBoard, ensure_node_runtime

    ensure_node_runtime(log=lambda line: None)
    with VirtualBoard(tmp_path / "board") as board:
        before = sorted(p.relative_to(board.dir).as_posix() for p in board.dir.rglob("*"))
        with pytest.raises(FlashError, match="has no ROMFS partition") as exc:
            flash(board.port, rp2, config={"escape_window_ms": 300})
        assert len(str(exc.value).splitlines()) <= 2  # the line and its hint
        assert sorted(p.relative_to(board.dir).as_posix() for p in board.dir.rglob("*")) == before


def test_rp2_firmware_is_not_sent_over_the_serial_line(rp2, tmp_path):
    from dmagent.host_tools.flash.deploy import FlashError, flash

    uf2 = tmp_path / "firmware.uf2"
    uf2.write_bytes(b"UF2\n")
    with pytest.raises(FlashError, match="copied onto its RPI-RP2 drive"):
        flash("/dev/null-no-such-port", rp2, firmware=uf2)


def test_mpremote_romfs_deploy_runs_over_the_flash_raw_repl(rp2, tmp_path):
    """mpremote's own deploy, driven through the flash's entered raw REPL, as far as a board
    without ROMFS lets it go: its first question is asked and answered over our transport."""
    from dmagent.host_tools.flash import romfs as flash_romfs
    from dmagent.host_tools.flash.deploy import FlashError, Repl
    from dmagent.host_tools.vboard.board import VirtualBoard, ensure_node_runtime

    ensure_node_runtime(log=lambda line: None)
    with VirtualBoard(tmp_path / "board") as board:
        repl = Repl(board.port)
        try:
            assert repl.enter() == "repl"
            seen = []
            with pytest.raises(FlashError, match="writing the ROMFS image failed: ROMFS is not enabled"):
                flash_romfs.deploy(repl, rp2, lambda *a: seen.append(a))
            assert seen == [("romfs", 0, 1)]
            assert repl.call("print(6*7)").strip() == b"42"  # the raw REPL is still ours
        finally:
            repl.close()
