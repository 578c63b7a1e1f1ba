"""Rule: the .mpy cache is shared by every process of a clone (a test run beside `make
mutate`): builds of the same sources at the same time each end with the whole build, and
none deletes or half-writes the folder another one is reading."""

import subprocess
import sys
from pathlib import Path

from dmagent.host_tools.paths import ROOT

BUILD = """
import sys
from pathlib import Path
from dmagent.firmware_build import mpy
out = mpy.compile_packages([Path(sys.argv[1])], extra_args=("-O3",))
names = sorted(p.name for p in out.rglob("*.mpy"))
print(len(names), out)
"""


def test_builds_of_the_same_sources_at_once_each_end_with_the_whole_build(tmp_path):
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    for i in range(40):  # enough files that the builds overlap
        (package / ("m%d.py" % i)).write_text("def f%d(x):\n    return x + %d\n" % (i, i))
    env = {"DMAGENT_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(package)], cwd=str(ROOT), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        count, folder = out.split()
        assert int(count) == 40
    folder = Path(folder)
    assert sorted(p.name for p in folder.rglob("*.mpy")) == sorted("m%d.mpy" % i for i in range(40))
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no work folder left behind
