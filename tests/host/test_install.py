"""Rule: a built wheel, installed into a fresh venv, is a working `dmagent` that claims no generic
top-level names in site-packages.

Builds the wheel from this clone, installs it with the pinned constraints (pip's configured
index), and runs the tool from a folder outside the clone, with its own cache folder.
"""

import os
import subprocess
import sys
import time
import venv

import pytest

from tests.host.agents import ROOT

GENERIC = ("agent", "boards", "host_tools", "firmware_build")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("install")
    wheels = work / "wheels"
    pip_env = dict(os.environ, PIP_CONSTRAINT=str(ROOT / "constraints.txt"))  # the build backend too
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                           env=pip_env, capture_output=True, text=True, timeout=300)
    if built.returncode != 0:
        pytest.fail("pip wheel failed:\n" + built.stderr[-2000:])
    wheel = next(wheels.glob("dmagent-*.whl"))
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    start = time.monotonic()
    pip = [str(env_dir / "bin" / "pip"), "install", "-q", "-c", str(ROOT / "constraints.txt"), str(wheel)]
    done = subprocess.run(pip, env=pip_env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail("pip install of the wheel failed:\n" + done.stderr[-2000:])
    print("wheel install into a fresh venv: %.1f s" % (time.monotonic() - start))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DMAGENT_", "PYTHON"))}
    env.update(XDG_CACHE_HOME=str(work / "cache"), XDG_CONFIG_HOME=str(work / "config"))
    outside = work / "elsewhere"
    outside.mkdir()
    return env_dir, env, outside


def _run(installed, *args, timeout=120):
    env_dir, env, outside = installed
    return subprocess.run([str(env_dir / "bin" / "dmagent")] + list(args), cwd=str(outside), env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_wheel_claims_only_the_dmagent_package(installed):
    env_dir, _, _ = installed
    site = next((env_dir / "lib").glob("python*/site-packages"))
    names = {p.name for p in site.iterdir()}
    assert "dmagent" in names
    assert not names & set(GENERIC), names & set(GENERIC)


def test_installed_dmagent_builds_the_virtual_board(installed):
    start = time.monotonic()
    proc = _run(installed, "build", "--board", "virtual", "--json")
    print("first `dmagent build --board virtual` on a fresh venv: %.1f s" % (time.monotonic() - start))
    assert proc.returncode == 0, proc.stderr
    assert '"board": "virtual"' in proc.stdout and "Traceback" not in proc.stderr
    assert str(installed[1]["XDG_CACHE_HOME"]) in proc.stdout  # the bundle goes to the user's cache


def test_installed_vboard_helps_without_a_traceback(installed):
    proc = _run(installed, "vboard", "--help")
    assert proc.returncode == 0 and "virtual MicroPython board" in proc.stdout, proc.stderr


def test_installed_serve_answers_a_session(installed):
    env_dir, env, outside = installed
    demo = next((env_dir / "lib").glob("python*/site-packages")) / "dmagent" / "boards" / "unix" / "demo-config.json"
    proc = subprocess.Popen([str(env_dir / "bin" / "dmagent"), "serve", "--tcp", "127.0.0.1:0", "--insecure",
                             "--config", str(demo)], cwd=str(outside), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving "), proc.stderr.read() if proc.poll() is not None else line
        url = line.split(None, 1)[1].strip()
        got = _run(installed, "-d", url, "--as", "ServerA", "get", "./DevInfo/DevId")
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip()
    finally:
        proc.terminate()
        proc.wait(10)
