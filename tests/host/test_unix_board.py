"""The Unix board's start-up: boards/unix/main.py is a few lines, and its body, dmunix, runs as
.mpy on the device runtime and frozen in the frozen firmware (a script's code would be
compiled into the heap at every start), with dmunix.py beside main.py as the fallback.
"""

import pytest

from dmagent.host_tools.runtime import micropython as mpy_runtime
from tests.host.agents import ROOT

# main.py as the launcher runs it (its folder first on sys.path), given a bad flag: it stops
# at once with the usage line, and says where dmunix came from.
PROBE = """import sys
sys.path[0] = "boards/unix"
sys.argv.append("--bogus")
try:
    exec(open("boards/unix/main.py").read())
except SystemExit as exc:
    print(sys.modules["dmunix"].__file__, exc.args[0])
"""


@pytest.mark.parametrize("runtime", mpy_runtime.RUNTIMES)
def test_the_unix_start_up_is_never_compiled_from_source(tmp_path, runtime):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    proc = mpy_runtime.run_file(probe, runtime=runtime, cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "bad argument '--bogus'" in proc.stderr, proc.stdout + proc.stderr
    where, code = proc.stdout.split()
    assert code == "2"
    if runtime == mpy_runtime.FROZEN:
        assert where == "dmunix.py"  # a frozen module's name: no folder
    else:
        assert where.endswith("/dmunix.mpy") and where.startswith(".cache/mpy/"), where


# main.py booted with no link (so the loop has nothing to wait for once the start-up's report
# has run): the loop runs its tasks once, then what is left of dmunix is shown.
BOOTED = """import sys, asyncio
sys.path[0] = "boards/unix"
sys.argv[1:] = ["--config", "boards/unix/demo-config.json", "--insecure"]

def once():
    asyncio.run_until_complete()
    print("left:", "dmunix" in sys.modules, "dmunix" in globals())

asyncio.Loop.run_forever = once
exec(open("boards/unix/main.py").read())
"""


@pytest.mark.parametrize("runtime", mpy_runtime.RUNTIMES)
def test_once_booted_the_start_up_has_left_the_heap(tmp_path, runtime):
    """Rule: what serves is the agent's: dmunix's module and names are gone before the heap
    figure is taken and the agent says it is ready."""
    probe = tmp_path / "probe.py"
    probe.write_text(BOOTED)
    proc = mpy_runtime.run_file(probe, runtime=runtime, cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dmagent: heap " in proc.stderr and "dmagent: ready" in proc.stderr, proc.stderr
    assert proc.stdout.strip() == "left: False False", proc.stdout + proc.stderr


def test_without_a_compiled_copy_main_py_falls_back_to_the_source(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    proc = mpy_runtime.run_file(probe, compiled=False, cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["boards/unix/dmunix.py", "2"], proc.stdout + proc.stderr


def test_the_frozen_firmware_is_rebuilt_when_its_start_up_changes(tmp_path):
    from dmagent.firmware_build import bundle, unix_port

    board = bundle.load_board("unix")
    assert 'module("dmunix.py", base_path="freeze", opt=3)' in bundle.freeze_manifest_body(board)
    copy = tmp_path / "unix"
    copy.mkdir()
    for name in ("board.json", "main.py", "dmunix.py"):
        (copy / name).write_bytes((ROOT / "boards" / "unix" / name).read_bytes())
    assert unix_port.firmware_key(bundle.load_board(copy)) == unix_port.firmware_key(board)
    with open(copy / "dmunix.py", "a") as f:
        f.write("# changed\n")
    assert unix_port.firmware_key(bundle.load_board(copy)) != unix_port.firmware_key(board)
