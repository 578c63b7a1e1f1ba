"""The MicroPython runtimes on this machine: Debian's 32-bit build (the agent as .mpy files,
fetched into a project folder) and the frozen one (the agent built into the Unix port).

A 32-bit build matters: it has an ESP32's object sizes and 31-bit small ints, and
`-X heapsize` makes its heap a hard cap. Neither fetch touches the system's apt set-up: a
private sources list naming the system's own Debian mirror (firmware_build/apt.py).
"""

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from dmagent.host_tools.paths import ROOT, cache_dir

# Pinned: the Debian "trixie" package of the MicroPython Unix port.
MICROPYTHON_DEB_VERSION = "1.25.0+ds-1"
DEBIAN_SUITE = "trixie main"  # on the mirror the system's apt sources name (firmware_build.apt)
RUNTIME_LIBS = ("libc6", "libffi8", "libmbedcrypto16", "libmbedtls21", "libmbedx509-7")
# When the suite's index cannot be had (a mirror mid-sync serves a Packages file that fails
# its hash), the same packages straight from the pool, as apt resolved them on 2026-11-23.
POOL_DEBS = {
    "i386": (
        ("m/micropython/micropython_1.25.0+ds-1_i386.deb",
         "a72799821cb45442150f8a7f0757bc8e4f9a4b64abccbd837d694a20d6900bb5"),
        ("g/glibc/libc6_2.41-12+deb13u4_i386.deb",
         "67bb4b54cf4bb6a380449dfa1852cd9135659f85360caa0e41d312f4b30e573a"),
        ("libf/libffi/libffi8_3.4.8-2_i386.deb",
         "8bafefb38c320ca27796070c881595ce04d900c3b534ac142a494daf1fe1db13"),
        ("m/mbedtls/libmbedcrypto16_3.6.6-0.1~deb13u1_i386.deb",
         "aa4698ed436eebf77e3dc9f5c514073bd554109d857d887db5a367dde9a5c377"),
        ("m/mbedtls/libmbedtls21_3.6.6-0.1~deb13u1_i386.deb",
         "eb1b20154ce9008aca1d036698ffc12019020a54985d2c5ae3dc1c1c39c9e995"),
        ("m/mbedtls/libmbedx509-7_3.6.6-0.1~deb13u1_i386.deb",
         "fe6ba192c9227d30a4cd05a3bdeccdf9ff30d55b27d8ff488126c16dcf727cce"),
    ),
}
DEFAULT_HEAP = "110k"

# host machine -> (Debian arch, multiarch triplet, loader)
_ARCHES = {
    "x86_64": ("i386", "i386-linux-gnu", "ld-linux.so.2"),
    "i686": ("i386", "i386-linux-gnu", "ld-linux.so.2"),
    "aarch64": ("armhf", "arm-linux-gnueabihf", "ld-linux-armhf.so.3"),
    "armv7l": ("armhf", "arm-linux-gnueabihf", "ld-linux-armhf.so.3"),
}

REPO_ROOT = ROOT  # kept: serve.py and others name it


class RuntimeMissing(RuntimeError):
    """The device runtime is not here and could not be fetched; the message says why."""


def _local_root():
    return cache_dir() / ("micropython-" + MICROPYTHON_DEB_VERSION)


def _arch():
    machine = platform.machine()
    if machine not in _ARCHES:
        raise RuntimeMissing("no 32-bit MicroPython build known for machine %r" % machine)
    return _ARCHES[machine]


def _local_command(root):
    _, triplet, loader = _arch()
    libdir = root / "usr" / "lib" / triplet
    return [str(libdir / loader), "--library-path", str(libdir), str(root / "usr" / "bin" / "micropython")]


# The runtimes on this machine: Debian's build importing the agent as .mpy files (a board on
# stock firmware), and the Unix port built here with the agent frozen in (custom firmware).
MPY = "micropython"
FROZEN = "micropython-frozen"
RUNTIMES = (MPY, FROZEN)


def frozen_command(log=None):
    """The frozen runtime's argv prefix, built first (about a minute) when this checkout's
    agent has no cached build; raises RuntimeMissing with the one line that says why not."""
    env = os.environ.get("DMAGENT_MICROPYTHON_FROZEN")
    if env:
        return env.split()
    from dmagent.firmware_build.firmware import frozen_unix_binary
    from dmagent.firmware_build.mpy import BuildError

    try:
        binary = frozen_unix_binary(log or (lambda line: print(line, file=sys.stderr)))
    except BuildError as exc:
        raise RuntimeMissing("the frozen runtime cannot be built: %s" % exc) from None
    return [str(binary)]


def ensure_frozen(log=print):
    """make setup's step: gcc-multilib (installed when root may), then the frozen build."""
    from dmagent.firmware_build.unix_port import install_multilib

    if not install_multilib(log):
        return None
    argv = frozen_command(log)
    log("setup: frozen runtime (agent frozen into the Unix port): %s" % " ".join(argv))
    return argv


def command(runtime=MPY):
    """The argv prefix that starts a runtime (default: the .mpy one); raises RuntimeMissing."""
    if runtime == FROZEN:
        return frozen_command()
    if runtime != MPY:
        raise RuntimeMissing("no MicroPython runtime %r: the runtimes are %s" % (runtime, ", ".join(RUNTIMES)))
    env = os.environ.get("DMAGENT_MICROPYTHON")
    if env:
        return env.split()
    root = _local_root()
    if (root / ".complete").exists():
        return _local_command(root)
    host = shutil.which("micropython")
    if host:
        return [host]
    raise RuntimeMissing("MicroPython device runtime not set up: run `make setup` (or `python -m dmagent.host_tools.runtime.micropython ensure`)")


def ensure(log=print):
    """Make sure the runtime is there: the host's own, or Debian's fetched into the cache."""
    env = os.environ.get("DMAGENT_MICROPYTHON")
    if env:
        log("device runtime: %s (from DMAGENT_MICROPYTHON)" % env)
        return env.split()
    root = _local_root()
    if (root / ".complete").exists():
        return _local_command(root)
    if shutil.which("micropython"):
        log("device runtime: host micropython at %s" % shutil.which("micropython"))
        return [shutil.which("micropython")]
    _fetch(root, log)
    return _local_command(root)


def _fetch(root, log):
    from dmagent.firmware_build.apt import AptError, PrivateApt, debian_mirror

    if not shutil.which("dpkg"):
        raise RuntimeMissing("cannot fetch the MicroPython device runtime: dpkg is not on this machine")
    arch, _, _ = _arch()
    try:
        mirror = debian_mirror()
    except AptError as exc:
        raise RuntimeMissing("cannot fetch the MicroPython device runtime: %s" % exc) from None
    log("fetching Debian micropython %s (%s) from %s into %s" % (MICROPYTHON_DEB_VERSION, arch, mirror, root))
    work = root.with_name(root.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "debs").mkdir(parents=True)
    pkgs = ["micropython=" + MICROPYTHON_DEB_VERSION] + list(RUNTIME_LIBS)
    try:
        apt = PrivateApt(work, ["deb %s %s" % (mirror, DEBIAN_SUITE)], arch)
        apt.update()
        apt.run(["download"] + pkgs, work / "debs", "apt-get download")
    except AptError as exc:
        if arch not in POOL_DEBS:
            raise RuntimeMissing(str(exc)) from None
        log("%s; fetching the pinned packages from the pool instead" % exc)
        for deb in (work / "debs").glob("*.deb"):
            deb.unlink()
        _fetch_pool(mirror + "/pool/main/", POOL_DEBS[arch], work / "debs")
    tree = work / "root"
    for deb in sorted((work / "debs").glob("*.deb")):
        _run(["dpkg", "-x", str(deb), str(tree)], work, "dpkg -x %s" % deb.name)
    shutil.rmtree(root, ignore_errors=True)
    tree.rename(root)
    shutil.rmtree(work, ignore_errors=True)
    probe = subprocess.run(_local_command(root) + ["-c", "import sys; print(sys.implementation.version)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise RuntimeMissing("fetched MicroPython does not start: %s" % probe.stderr.strip())
    (root / ".complete").write_text(MICROPYTHON_DEB_VERSION + "\n")
    log("device runtime ready: MicroPython %s" % probe.stdout.strip())


def _fetch_pool(pool, debs, folder):
    """Download each (pool path, sha256) into folder; RuntimeMissing on a bad or missing file."""
    from dmagent.firmware_build.apt import AptError, download

    for path, digest in debs:
        try:
            download(pool + path, folder / path.rsplit("/", 1)[1], digest)
        except AptError as exc:
            raise RuntimeMissing(str(exc)) from None


def _run(argv, cwd, what):
    proc = subprocess.run(argv, cwd=str(cwd), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeMissing("%s failed: %s" % (what, " | ".join(tail)))


def short_path(path, cwd=REPO_ROOT):
    """path as the runtime should see it: relative to cwd when it lies below it. MicroPython
    interns the path of every module it imports (its __file__) for good: from an absolute
    path, a clone at a 150-character path boots with 5 KB less heap than one at /src."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(cwd).resolve()).as_posix() or "."
    except ValueError:
        return str(path)


def env_for(paths=(), compiled=True, cwd=None, runtime=MPY):
    """Environment for a runtime: agent/ importable (as .mpy, like a board, unless compiled
    is False; the sources stay on the path behind it), plus extra paths. Paths below cwd
    (default: the current folder) are given relative to it (see short_path). The frozen
    runtime finds the agent in .frozen, ahead of everything else."""
    cwd = cwd or os.getcwd()
    front = [str(p) for p in paths]
    if compiled and runtime == MPY:
        from dmagent.firmware_build.mpy import BuildError, agent_mpy

        try:
            front.append(agent_mpy())
        except BuildError as exc:
            raise RuntimeMissing(str(exc)) from None
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([".frozen"] + [short_path(Path(cwd) / p, cwd) for p in front + [REPO_ROOT]])
    return env


def run_file(path, heap=DEFAULT_HEAP, args=(), paths=(), compiled=True, runtime=MPY, **popen_kw):
    """Run a Python file under a runtime (default: the .mpy one); returns CompletedProcess."""
    cwd = popen_kw.get("cwd") or os.getcwd()
    return subprocess.run(_argv(path, heap, args, cwd, runtime), env=env_for(paths, compiled, cwd, runtime),
                          **popen_kw)


def spawn(path, heap=DEFAULT_HEAP, args=(), paths=(), compiled=True, runtime=MPY, **popen_kw):
    """Start a Python file under a runtime, in the repository's folder unless cwd is given
    (so the code's paths, and the heap, do not depend on where the clone is)."""
    cwd = popen_kw.setdefault("cwd", str(REPO_ROOT))
    return subprocess.Popen(_argv(path, heap, args, cwd, runtime), env=env_for(paths, compiled, cwd, runtime),
                            **popen_kw)


def _argv(path, heap, args, cwd, runtime=MPY):
    """The command line that runs path's file as __main__ with no path longer than needed:
    started as a script, MicroPython would put the script's absolute folder first on
    sys.path, interned for good. So a one-line launcher does what a script start does."""
    cmd = command(runtime)
    if os.path.isabs(cmd[-1]):
        cmd[-1] = short_path(cmd[-1], cwd)
    script = short_path(Path(cwd) / path, cwd)  # a relative script is the runtime's cwd's
    # The source is read and compiled in a function, so no reference to its text is left
    # in a frame while the file runs.
    launcher = ("import sys\nsys.path[0] = %r\ndef _code(p):\n    with open(p) as f:\n"
                "        return compile(f.read(), p, 'exec')\nexec(_code(%r))"
                % (os.path.dirname(script) or ".", script))
    return cmd + ["-X", "heapsize=%s" % heap, "-c", launcher] + list(args)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["ensure"], ["ensure-frozen"]):
        try:
            (ensure if argv[0] == "ensure" else ensure_frozen)()
        except RuntimeMissing as exc:
            print("error: %s" % exc, file=sys.stderr)
            return 1
        return 0
    print("usage: python -m dmagent.host_tools.runtime.micropython ensure|ensure-frozen", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
