"""Rules of the layout: agent/ imports itself relatively (it is `agent` on a board and
`dmagent.agent` on a host), host code imports the project as the installed `dmagent` package,
and the flasher knows no particular board. A failure here after a merge: run
`python3 tools/relative_imports.py`."""

import subprocess
import sys

from tests.host.agents import ROOT


def test_imports_are_in_the_one_package_form():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "relative_imports.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr, proc.stdout + proc.stderr


def test_the_flasher_knows_no_virtual_board():
    for path in (ROOT / "host_tools" / "flash").glob("*.py"):
        assert "vboard" not in path.read_text(), path
