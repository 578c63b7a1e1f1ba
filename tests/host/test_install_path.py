"""Nothing depends on where the clone sits: the `.mpy` agent served from a folder whose path
is over 150 characters boots with the same heap as from this clone, and a keyed session works.
(MicroPython interns the path of every module it imports, so a long path once cost 5 KB.)"""

import json
import re
import subprocess

import pytest

from dmagent.host_tools.client import Device
from tests.host.agents import ROOT, start_agent

RUNTIMES = ["micropython"]


def _heap_in_use(agent):
    found = re.findall(r"heap (\d+) bytes in use", agent.log())
    assert found, agent.log()
    return int(found[-1])


def _long_clone(tmp_path):
    """The tracked files at a path over 150 characters; the fetched runtime linked in."""
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "dmagent"
    deep.mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    tar = subprocess.run(["tar", "cf", "-", "--null", "-T", "-"], cwd=ROOT, input=files,
                         capture_output=True, check=True).stdout
    subprocess.run(["tar", "xf", "-"], cwd=deep, input=tar, check=True)
    (deep / ".cache").mkdir()
    for runtime in (ROOT / ".cache").glob("micropython-*"):
        (deep / ".cache" / runtime.name).symlink_to(runtime)
    assert len(str(deep)) > 150
    return deep


def _keyed(tmp_path, runtime, root):
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    key = keys / "ServerA.key"
    key.write_text(json.dumps({"principal": "ServerA", "key": "11" * 16}))
    key.chmod(0o600)
    config = root / "boards" / "unix" / "demo-config.json"  # each clone's own
    return start_agent(tmp_path, runtime=runtime, insecure=False, config=config, extra=["--keys", str(keys)],
                       root=root), key


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_heap_after_boot_does_not_depend_on_the_install_path(tmp_path, runtime):
    deep = _long_clone(tmp_path)
    figures = []
    for root, where in ((ROOT, tmp_path / "here"), (deep, tmp_path / "deep")):
        where.mkdir()
        agent, key = _keyed(where, runtime, root)
        try:
            figures.append(_heap_in_use(agent))
            with Device.open(agent.url, key=key) as dev:
                dev.add("./P", 1)
                assert dev.get("./P") == 1
        finally:
            agent.stop()
    print("heap in use after boot, keyed .mpy: %d B from this clone, %d B from a %d-character path"
          % (figures[0], figures[1], len(str(deep))))
    # A few 16-byte blocks vary from run to run (ports, timing); one path of the clone left
    # in the heap would be 170 bytes or more, all of them 5 KB.
    assert abs(figures[0] - figures[1]) <= 160, figures
