"""`dmagent build`: the bundle's files, manifest and version checks, and that the bundle runs.

The .mpy files the build makes are loaded by the real MicroPython device runtime: the agent
answers `info` from them (boards/unix style, over TCP), and the esp32 board's own main.py
serves its console (a pseudo-terminal here) and hands it back to the REPL on Exec.
"""

import hashlib
import json
import os
import select
import shutil
import subprocess
import time
import tty

import pytest
from click.testing import CliRunner

from dmagent import agent
from dmagent.firmware_build import bundle as B
from dmagent.firmware_build import fold, mpy
from dmagent.firmware_build.mpy import BuildError
from dmagent.host_tools.runtime import micropython as mpy_runtime
from dmagent.host_tools.cli.build import build_command
from dmagent.host_tools.client.device import Device
from dmagent.host_tools.client.transport import FdTransport
from tests.host.agents import DEMO_CONFIG, ROOT, TEST_HEAP, free_port


@pytest.fixture(scope="module")
def esp32(tmp_path_factory):
    return B.build("esp32", tmp_path_factory.mktemp("bundle") / "esp32")


def needs_runtime():
    try:
        mpy_runtime.command()
    except mpy_runtime.RuntimeMissing as exc:
        pytest.skip(str(exc))


def test_manifest_names_every_file_with_its_size_and_hash(esp32):
    m = json.loads((esp32.dir / "manifest.json").read_text())
    assert m["board"] == "esp32" and m["micropython"] == "1.25" and m["mpy"] == "6.3"
    assert m["bundle"].startswith(agent.__version__) and m["agent"] == agent.__version__
    if m["git"]:
        assert m["bundle"] == agent.__version__ + "+" + m["git"]
    paths = [e["path"] for e in m["files"]]
    on_disk = sorted("/" + p.relative_to(esp32.dir / "files").as_posix()
                     for p in (esp32.dir / "files").rglob("*") if p.is_file())
    assert sorted(paths) == on_disk
    for e in m["files"]:
        data = (esp32.dir / "files" / e["path"].lstrip("/")).read_bytes()
        assert e["size"] == len(data) and e["sha256"] == hashlib.sha256(data).hexdigest(), e["path"]
        assert (ROOT / e["source"]).stat().st_size == e["source_size"]
    assert m["total"] == sum(e["size"] for e in m["files"])
    # Rule: boot.py and main.py stay .py at the root (run by name); all else is .mpy in /lib.
    assert {"/boot.py", "/main.py"} <= set(paths)
    for path in set(paths) - {"/boot.py", "/main.py"}:
        assert path.startswith("/lib/") and path.endswith(".mpy"), path
        assert mpy.read_mpy_header(esp32.local(path))[0] == 6
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "agent").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert {e["source"] for e in m["files"] if e["path"].startswith("/lib/agent/")} == sources
    esp32.check()


def test_freeze_manifest_uses_micropython_manifest_syntax(esp32):
    text = (esp32.dir / "manifest.py").read_text()
    assert 'package("agent", base_path="freeze", opt=3)' in text
    assert 'module("dmboard.py", base_path="freeze", opt=3)' in text
    assert "boot.py" not in [line.split('"')[1] for line in text.splitlines() if line.startswith("module(")]
    # Rule: what is frozen is what the .mpy files hold: the sources with proto's constants folded
    folded = fold.prepare([ROOT / "boards" / "esp32" / "dmboard.py", ROOT / "boards" / "esp32" / "dmlinks.py"])
    for rel in ("agent/app.py", "agent/proto.py", "dmboard.py"):
        assert (esp32.dir / "freeze" / rel).read_bytes() == (folded / rel).read_bytes(), rel
    assert (esp32.dir / "freeze" / "agent" / "proto.py").read_bytes() == (ROOT / "agent" / "proto.py").read_bytes()
    assert "import proto" not in (esp32.dir / "freeze" / "dmboard.py").read_text()
    compile(text.replace("$(PORT_DIR)", "/x"), "manifest.py", "exec")  # valid Python


def test_size_table_has_every_file_and_a_total(esp32):
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(B.size_table(esp32.manifest))
    text = console.export_text()
    assert "/lib/agent/app.mpy" in text and "/main.py" in text
    assert "total (%d files)" % len(esp32.files) in text


def test_a_board_on_other_mpy_firmware_is_refused(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "main.py").write_text("print(1)\n")
    (folder / "board.json").write_text(json.dumps({"name": "old", "runtime": "micropython",
                                                   "micropython": "1.18", "files": ["main.py"]}))
    with pytest.raises(BuildError) as err:
        B.build(folder, tmp_path / "out")
    text = str(err.value)
    assert "MicroPython 1.18" in text and ".mpy v5.0" in text and "v6.3" in text and "hint:" in text
    assert not (tmp_path / "out").exists()
    # The table follows MicroPython's: bytecode .mpy only needs the major version to match.
    assert mpy.mpy_abi_for("1.25") == (6, 3) and mpy.mpy_abi_for("v1.22.2") == (6, 2)
    assert mpy.mpy_abi_for("1.19.1") == (6, 0) and mpy.mpy_abi_for("1.12") == (5, 0)
    assert mpy.check_target("1.27") == (6, 3)
    assert mpy.abi_from_sys_mpy(0x706) == (6, 3)  # what the device runtime reports


def test_a_board_without_a_firmware_version_or_a_cpython_board_is_refused(tmp_path):
    folder = tmp_path / "nov"
    folder.mkdir()
    (folder / "board.json").write_text(json.dumps({"name": "nov", "runtime": "micropython"}))
    with pytest.raises(BuildError, match="declares its firmware version"):
        B.build(folder)
    with pytest.raises(BuildError, match="runs cpython"):
        B.build("rpi")
    with pytest.raises(BuildError, match="no board 'nope'"):
        B.build("nope")


def test_every_board_json_is_valid():
    names = B.board_names()
    assert {"esp32", "rpi", "virtual"} <= set(names)
    for name in names:
        board = B.load_board(name)
        assert (ROOT / "boards" / name / "README.md").exists()
        assert isinstance(board["config"], dict)


def test_cli_build_prints_the_table_and_fails_readably(tmp_path):
    runner = CliRunner()
    res = runner.invoke(build_command, ["--board", "esp32", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "total" in res.output and (tmp_path / "b" / "manifest.json").exists()
    res = runner.invoke(build_command, ["--board", "nope"])
    assert res.exit_code == 2 and "error:" in res.output and "no board" in res.output


def test_bundle_mpy_files_boot_the_agent_on_the_device_runtime(esp32, tmp_path):
    """boards/unix's main.py on the device runtime, importing agent/ from the bundle only."""
    needs_runtime()
    lib = str(esp32.lib_dir)
    probe = tmp_path / "which.py"
    probe.write_text("import agent.app, dmboard\nprint(agent.app.__file__)\nprint(dmboard.__file__)\n")
    out = mpy_runtime.run_file(probe, paths=[lib], compiled=False, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [lib + "/agent/app.mpy", lib + "/dmboard.mpy"]
    port = free_port()
    proc = mpy_runtime.spawn(ROOT / "boards" / "unix" / "main.py", paths=[lib], compiled=False,
                             args=["--tcp", "127.0.0.1:%d" % port, "--config", str(DEMO_CONFIG), "--insecure"],
                             stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if "ready" in line:
                break
        with Device.open("tcp://127.0.0.1:%d" % port, principal="ServerA") as dev:
            info = dev.info()
            assert info["runtime"] == "micropython" and info["agent"] == agent.__version__
            assert dev.get("./DevInfo/DevId") == "urn:dmagent:demo-0001"
    finally:
        proc.kill()
        proc.wait()


def test_a_compiled_module_names_itself_in_tracebacks_by_its_module_name(tmp_path):
    """Rule: the name tracebacks show (mpy-cross -s, interned by a board for good) is the
    module's dotted name, a qstr every board has anyway, not a path of its own."""
    assert [mpy.source_name(rel) for rel in ("agent/mo/__init__.py", "agent/mo/ext.py", "dmunix.py")] == \
        ["agent.mo", "agent.mo.ext", "dmunix"]
    needs_runtime()
    probe = tmp_path / "raise.py"
    probe.write_text("import sys\nfrom agent import uri\ntry:\n    uri.parse(None)\n"
                     "except Exception as exc:\n    sys.print_exception(exc)\n")
    out = mpy_runtime.run_file(probe, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and 'File "agent.uri", line 1, in parse' in out.stdout, out.stdout + out.stderr


def test_esp32_main_serves_its_console_at_the_test_heap_and_gives_it_back(esp32, tmp_path):
    """The board's main.py and dmboard.mpy, with the bundle as the file system, on a pty
    console, in a board's 110k heap (relative paths, as on a board: MicroPython keeps its
    module paths in the heap)."""
    needs_runtime()
    fs = tmp_path / "fs"
    shutil.copytree(esp32.dir / "files", fs)
    config = json.loads(DEMO_CONFIG.read_text())
    config.update(insecure=True, escape_window_ms=200, security={"owners": ["ServerA"]})
    (fs / "dmagent.json").write_text(json.dumps(config))
    master, slave = os.openpty()
    tty.setraw(slave)
    proc = mpy_runtime.spawn("main.py", heap=TEST_HEAP["micropython"], paths=["lib"], compiled=False, cwd=str(fs),
                             stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    try:
        seen = _read_until(master, b"dmagent: serving console\n", 20)
        assert b"DMAGENT-REPL<NUL> for the REPL" in seen
        with Device(FdTransport(master)) as dev:
            info = dev.info()
            assert info["devid"] == "urn:dmagent:demo-0001"
            dev.hello("ServerA")
            dev.add("./Probe", "\x03\x04 binary-safe", "chr")  # Ctrl-C in a frame: no interrupt
            assert dev.get("./Probe") == "\x03\x04 binary-safe"
            assert dev.exec("./DevDetail/Ext/Repl")[0] == 200
            assert b"the console is the REPL again" in _read_until(master, b"REPL again", 5)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        os.close(slave)


def _read_until(fd, marker, timeout):
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0, left))
        if not ready:
            raise AssertionError("no %r within %ss; got %r" % (marker, timeout, seen))
        seen += os.read(fd, 4096)
    return seen
