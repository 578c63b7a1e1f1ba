"""`make demo` runs: the walk-through is real requests, so a broken step fails it."""

import subprocess
import sys

import pytest

from tests.host.agents import ROOT


@pytest.mark.parametrize("runtime", ["virtual", "cpython"])
def test_demo_runs_to_the_end(runtime):
    proc = subprocess.run([sys.executable, "-m", "dmagent.host_tools.demo", "--runtime", runtime],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "demo finished" in proc.stdout
    if runtime == "virtual":
        assert "the tree and the key survived" in proc.stdout
        assert "0 files sent" in proc.stdout  # the second flash: every hash already matched
