"""The frozen runtime: MicroPython 1.25's Unix port, 32-bit, with the agent frozen in.

Built from Debian's pinned source (firmware_build.source) with the board's manifest.py and
cached under .cache/frozen-<key>, where the key hashes the frozen sources, the manifest, the
flags and the source pin: a changed agent rebuilds (in seconds: the object files of a flag
set are kept), an unchanged one is found again. A failed build leaves the last one in place.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from dmagent.firmware_build import source
from dmagent.firmware_build.apt import AptError
from dmagent.firmware_build.mpy import BuildError

# 32-bit like an ESP32, without the parts the "+ds" source lacks (libffi, berkeley-db), as
# in shared/design/runtimes.md section 3, but with mbedtls (firmware_build.source) and so
# with cryptolib: MICROPY_PY_SSL=0 would leave the agent on its pure-Python AES, which no
# stock ESP32 firmware makes it use.
FLAGS = ("MICROPY_FORCE_32BIT=1", "MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0")
JOBS = "-j2"
BINARY = "micropython"


def cache_root():
    return source.CACHE


def firmware_key(board):
    """Hash of what goes into the binary: frozen files, manifest lines, flags, source pin."""
    from dmagent.firmware_build.bundle import freeze_files, freeze_manifest_body

    digest = hashlib.sha256(source.source_key().encode())
    digest.update("\n".join(FLAGS).encode())
    digest.update(freeze_manifest_body(board).encode())
    for rel, path in freeze_files(board):
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def built_binary(board):
    """The cached binary for this board's current sources, or None."""
    folder = cache_root() / ("frozen-" + firmware_key(board))
    return folder / BINARY if (folder / ".complete").exists() else None


def missing_tools():
    """One line naming what a Unix-port build needs and does not find, or None."""
    for tool in ("gcc", "make"):
        if not shutil.which(tool):
            return "a frozen Unix-port build needs %s, which is not on PATH (apt-get install build-essential)" % tool
    if not _can_build_32bit():
        return "a frozen Unix-port build needs 32-bit gcc support: apt-get install gcc-multilib"
    return None


def _can_build_32bit():
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "t.c"
        src.write_text("#include <stdio.h>\nint main(void){return 0;}\n")
        proc = subprocess.run(["gcc", "-m32", str(src), "-o", str(Path(tmp) / "t")], capture_output=True)
        return proc.returncode == 0


def install_multilib(log=print):
    """Setup's step: apt-get install gcc-multilib when root may, else say what to run."""
    if shutil.which("gcc") and _can_build_32bit():
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log("setup: the frozen runtime needs gcc-multilib and this user cannot install it: "
            "run `sudo apt-get install gcc-multilib`, then `make setup` again")
        return False
    log("setup: installing gcc-multilib (apt-get install gcc-multilib) for the 32-bit frozen build")
    proc = subprocess.run(["apt-get", "install", "-y", "-q", "gcc-multilib"], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        log("setup: apt-get install gcc-multilib failed (%s): the frozen runtime is not built" % " ".join(tail))
        return False
    return True


def build(board, manifest_py, log=print):
    """Build the frozen Unix binary for board (its manifest.py given); returns its path.

    BuildError with one line when a tool is missing, the source cannot be had or does not
    match its pin, or the compiler fails; the cached binaries stay as they were."""
    problem = missing_tools()
    if problem:
        raise BuildError(problem)
    key = firmware_key(board)
    out = cache_root() / ("frozen-" + key)
    if (out / ".complete").exists():
        log("firmware: frozen Unix port %s is cached (%s)" % (key, out / BINARY))
        return out / BINARY
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / "frozen.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second build of the same tree waits, then reuses
        if (out / ".complete").exists():
            return out / BINARY
        return _build_locked(board, Path(manifest_py), key, out, log)


def _build_locked(board, manifest_py, key, out, log):
    cache = _make_safe(cache_root().resolve(), "cache")
    manifest_py = _make_safe(manifest_py.resolve().parent, "bundle") / manifest_py.name
    return _build_linked(board, manifest_py, cache, out, log)


def _make_safe(path, role):
    """path itself, or where it has characters make splits at, a stable symlink to it (make's
    dependency files keep the paths it was given, so the link must not move between builds)."""
    if not any(c in str(path) for c in " \t#$:;\"'"):
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    link = Path(tempfile.gettempdir()) / ("dmagent-fw-%d-%s-%s" % (os.getuid(), role, digest))
    if link.is_symlink() and link.lstat().st_uid == os.getuid() and Path(os.readlink(link)) == path:
        return link
    if link.is_symlink() and link.lstat().st_uid == os.getuid():
        link.unlink()
    elif os.path.lexists(link):
        raise BuildError("%s is in the way (not this user's link to %s): remove it" % (link, path))
    link.symlink_to(path)
    return link


def _build_linked(board, manifest_py, cache, out, log):
    start = time.monotonic()

    def stage(text):
        log("firmware: [%5.1f s] %s" % (time.monotonic() - start, text))

    try:
        source.tree(lambda line: stage(line.partition(": ")[2]))
        top = cache / source.source_dir().name / "src"
    except OSError as exc:  # a disk full, a cache folder that cannot be written
        raise BuildError("cannot unpack MicroPython's source: %s" % exc) from None
    except AptError as exc:
        raise BuildError("cannot get MicroPython's source: %s" % exc) from None
    mpy_cross = top / "mpy-cross" / "build" / "mpy-cross"
    if not mpy_cross.exists():
        stage("building mpy-cross (make %s -C mpy-cross)" % JOBS)
        _make(["-C", str(top / "mpy-cross")], "mpy-cross")
    lib = cache / "frozen-mpy-lib"  # the build wants $(MPY_LIB_DIR)/README.md; nothing else
    lib.mkdir(parents=True, exist_ok=True)
    (lib / "README.md").write_text("Empty on purpose: the frozen agent needs no micropython-lib.\n")
    objs = cache / ("frozen-build-" + hashlib.sha256(" ".join(FLAGS).encode()).hexdigest()[:12])
    stage("building the Unix port with %s frozen (make %s %s)" % (manifest_py.name, JOBS, " ".join(FLAGS)))
    _make(["-C", str(top / "ports" / "unix")] + list(FLAGS) +
          ["BUILD=%s" % objs, "MPY_LIB_DIR=%s" % lib, "FROZEN_MANIFEST=%s" % manifest_py],
          "the Unix port")
    work = out.with_name(out.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy2(objs / BINARY, work / BINARY)
    probe = subprocess.run([str(work / BINARY), "-c", "import cryptolib, agent.frame as f; print(f.__file__)"],
                           capture_output=True, text=True, env=dict(os.environ, MICROPYPATH=".frozen"))
    if probe.returncode != 0 or probe.stdout.strip() != "agent/frame.py":
        raise BuildError("the built firmware does not import the frozen agent: %s"
                         % (probe.stderr or probe.stdout).strip()[-200:])
    size = (work / BINARY).stat().st_size
    (work / ".complete").write_text("%d\n" % size)
    shutil.rmtree(out, ignore_errors=True)
    work.rename(out)
    _prune(out)
    stage("frozen Unix port ready: %s, %d bytes" % (out / BINARY, size))
    return out / BINARY


KEEP = 4  # frozen binaries kept in the cache (other branches' agents), newest first


def _prune(newest):
    built = sorted((d for d in cache_root().glob("frozen-????????????????") if d != newest),
                   key=lambda d: d.stat().st_mtime, reverse=True)
    for old in built[KEEP - 1:]:
        shutil.rmtree(old, ignore_errors=True)


def _make(args, what):
    proc = subprocess.run(["make", "-s", JOBS] + args, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [l for l in (proc.stderr or proc.stdout).strip().splitlines() if l.strip()]
        raise BuildError("building %s failed: %s" % (what, " | ".join(lines[-2:]) or "make exit %d" % proc.returncode))
