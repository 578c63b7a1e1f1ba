"""Turn agent/ and one board's files into a deployable bundle: .mpy files, manifest, sizes.

files/ mirrors the board's file system: boot.py and main.py stay .py (MicroPython runs them
by name), everything else is .mpy under /lib. manifest.json names every file's device path,
size and sha256, which `dmagent flash` checks on the device; manifest.py is for freezing
the same code into custom firmware instead.
"""

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from dmagent.firmware_build import fold, mpy
from dmagent.firmware_build.mpy import BuildError
from dmagent.host_tools.paths import BOARDS_DIR, IN_CLONE, ROOT, build_dir

MANIFEST = "manifest.json"
FREEZE_MANIFEST = "manifest.py"
FILES = "files"
RUN_BY_NAME = ("boot.py", "main.py")
FORMAT = 1
DEFAULT_PATHS = {"config": "/dmagent.json", "keys": "/keys", "state": "/state", "lib": "/lib"}


# --- boards -------------------------------------------------------------------------------
def board_names():
    """Every board folder with a board.json, sorted."""
    return sorted(p.parent.name for p in BOARDS_DIR.glob("*/board.json"))


def load_board(name):
    """board.json of boards/NAME (or of a folder path), checked, with "dir" added."""
    folder = BOARDS_DIR / str(name)
    if not (folder / "board.json").exists() and (Path(name) / "board.json").exists():
        folder = Path(name)
    path = folder / "board.json"
    if not path.exists():
        raise BuildError("no board %r: boards are %s" % (str(name), ", ".join(board_names()) or "(none)"))
    try:
        board = json.loads(path.read_text())
    except ValueError as exc:
        raise BuildError("%s is not valid JSON: %s" % (path, exc)) from None
    for key in ("name", "runtime"):
        if not board.get(key):
            raise BuildError("%s: %r is missing" % (path, key))
    if board["runtime"] == "micropython":
        if not board.get("micropython"):
            raise BuildError("%s: a MicroPython board declares its firmware version, "
                             "e.g. \"micropython\": \"1.25\"" % path)
        mpy.parse_release(board["micropython"])
    for name in board.get("files", []):
        if not (folder / name).is_file():
            raise BuildError("%s: file %s is missing" % (path, folder / name))
    board["dir"] = str(folder.resolve())
    paths = dict(DEFAULT_PATHS)
    paths.update(board.get("paths", {}))
    board["paths"] = paths
    board.setdefault("config", {})
    return board


# --- versions -------------------------------------------------------------------------------
def agent_version():
    from dmagent import agent

    return agent.__version__


def git_describe():
    """`git describe --tags --always --dirty` of the repository, or None outside git."""
    if not IN_CLONE:  # installed: a git repository around site-packages is not ours
        return None
    try:
        proc = subprocess.run(["git", "describe", "--tags", "--always", "--dirty"], cwd=str(ROOT),
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def bundle_version():
    describe = git_describe()
    return agent_version() + ("+" + describe if describe else "")


# --- the bundle ------------------------------------------------------------------------------
class Bundle:
    """A built bundle folder: manifest.json, files/ (the device's file system), manifest.py."""

    def __init__(self, folder, manifest):
        self.dir = Path(folder)
        self.manifest = manifest

    @classmethod
    def load(cls, folder):
        folder = Path(folder)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except OSError:
            raise BuildError("%s is not a bundle (no %s): run `dmagent build --board B`" % (folder, MANIFEST)) from None
        except ValueError as exc:
            raise BuildError("%s/%s is not valid JSON: %s" % (folder, MANIFEST, exc)) from None
        if manifest.get("format") != FORMAT:
            raise BuildError("%s: bundle format %r, this tool reads %d: rebuild it"
                             % (folder, manifest.get("format"), FORMAT))
        return cls(folder, manifest)

    @property
    def files(self):
        return self.manifest["files"]

    @property
    def board(self):
        return self.manifest["board"]

    @property
    def version(self):
        return self.manifest["bundle"]

    @property
    def lib_dir(self):
        """The local folder that holds the agent package: put it on MICROPYPATH."""
        if self.manifest.get("romfs"):
            return self.dir / "rom" / "lib"
        return self.local(self.manifest["paths"]["lib"])

    @property
    def romfs_image(self):
        """The ROMFS image's path for a ROMFS board, else None."""
        rom = self.manifest.get("romfs")
        return self.dir / rom["image"] if rom else None

    def local(self, device_path):
        return self.dir / FILES / device_path.lstrip("/")

    def read(self, device_path):
        return self.local(device_path).read_bytes()

    def check(self):
        """Every file is there with the manifest's size and hash (a bundle edited by hand is not)."""
        for entry in self.files:
            data = self.read(entry["path"])
            if len(data) != entry["size"] or sha256(data) != entry["sha256"]:
                raise BuildError("bundle %s: %s does not match its manifest: rebuild it" % (self.dir, entry["path"]))
        image = self.romfs_image
        if image and (not image.is_file() or sha256(image.read_bytes()) != self.manifest["romfs"]["sha256"]):
            raise BuildError("bundle %s: %s does not match its manifest: rebuild it" % (self.dir, image.name))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def _entry(device_path, data, source, source_size):
    return {"path": device_path, "size": len(data), "sha256": sha256(data),
            "source": source, "source_size": source_size}


def _rel(path):
    path = Path(path).resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def build(board, out=None):
    """Build the bundle for a board (name or board folder) into out (default build/BOARD)."""
    board = load_board(board)
    name = board["name"]
    if board["runtime"] != "micropython":
        raise BuildError("board %s runs %s: there is nothing to compile for it; install it as "
                         "%s/README.md says" % (name, board["runtime"], _rel(board["dir"])))
    abi = mpy.check_target(board["micropython"], "board %s" % name)
    out = Path(out) if out else build_dir() / name
    work = out.with_name(out.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    files = work / FILES
    lib = board["paths"]["lib"].rstrip("/")
    entries = []

    folder = Path(board["dir"])
    folded = fold.prepare(board_modules(board))  # what the board runs: proto's constants folded in
    compiled = mpy.compile_packages([folded / "agent"], extra_args=mpy.AGENT_MPY_ARGS)  # as proven at 110k
    for rel, src in mpy.sources([folded / "agent"]):
        built = compiled / (rel[:-3] + ".mpy")
        device_path = "%s/%s" % (lib, built.relative_to(compiled).as_posix())
        original = ROOT / rel
        _place(files, device_path, built.read_bytes(), entries, _rel(original), original.stat().st_size)
        _copy(src, work / "freeze" / rel)

    for fname in board.get("files", []):
        src = (folder / fname).resolve()
        base = src.name
        if base in RUN_BY_NAME:
            _place(files, "/" + base, src.read_bytes(), entries, _rel(src), src.stat().st_size)
            continue
        if not base.endswith(".py"):  # data files go as they are, under /lib
            _place(files, "%s/%s" % (lib, base), src.read_bytes(), entries, _rel(src), src.stat().st_size)
            continue
        target = work / "compiled" / (base[:-3] + ".mpy")
        mpy.compile_file(folded / base, target, mpy.source_name(base), mpy.AGENT_MPY_ARGS)
        _place(files, "%s/%s" % (lib, target.name), target.read_bytes(), entries, _rel(src), src.stat().st_size)
        _copy(folded / base, work / "freeze" / base)
    shutil.rmtree(work / "compiled", ignore_errors=True)

    for entry in entries:
        if entry["path"].endswith(".mpy"):
            version, _, _ = mpy.read_mpy_header(files / entry["path"].lstrip("/"))
            if version != abi[0]:
                raise BuildError("%s came out as .mpy v%d, board %s loads v%d" % (entry["path"], version, name, abi[0]))

    entries.sort(key=lambda e: e["path"])
    rom = _romfs(board, work, lib, entries) if board.get("romfs") else None
    describe = git_describe()
    manifest = {
        "format": FORMAT,
        "bundle": agent_version() + ("+" + describe if describe else ""),
        "agent": agent_version(),
        "git": describe,
        "board": name,
        "runtime": board["runtime"],
        "micropython": board["micropython"],
        "mpy": mpy.abi_text(abi),
        "mpy_cross": mpy.mpy_cross_version(),
        "paths": board["paths"],
        "config": board["config"],
        "firmware": board.get("firmware"),
        "romfs": rom,
        "files": entries,
        "total": sum(e["size"] for e in entries),
        "source_total": sum(e["source_size"] for e in entries),
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    (work / FREEZE_MANIFEST).write_text(freeze_manifest(manifest, board))
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    return Bundle(out, manifest)


def _romfs(board, work, lib, entries):
    """A ROMFS board: /lib's files leave the file system for an image mounted at /rom (so
    lib/ in the image is /rom/lib, on sys.path); rom/ keeps them unpacked. BuildError when
    the image is larger than the board's partition."""
    from dmagent.firmware_build import romfs

    in_lib = [e for e in entries if e["path"].startswith(lib + "/")]
    (work / "rom").mkdir()
    (work / FILES / lib.lstrip("/")).rename(work / "rom" / "lib")
    image = romfs.make_image(work / "rom")
    partition = int(board["romfs"]["bytes"])
    romfs.check_fits(image, partition, board["name"])
    (work / romfs.IMAGE).write_bytes(image)
    entries[:] = [e for e in entries if e not in in_lib]
    for e in in_lib:
        e["path"] = "/rom/lib" + e["path"][len(lib):]
    return {"image": romfs.IMAGE, "size": len(image), "sha256": sha256(image), "partition_bytes": partition,
            "mount": "/rom", "files": in_lib}


def _place(files, device_path, data, entries, source, source_size):
    target = files / device_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    entries.append(_entry(device_path, data, source, source_size))


def _copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def freeze_include(board):
    """The port's own manifest a board's firmware starts from (board.json "firmware"
    "include"; the Unix build has no micropython-lib, so it names only asyncio)."""
    return (board.get("firmware") or {}).get("include", "$(PORT_DIR)/boards/manifest.py")


def board_modules(board):
    """The board's own modules that are compiled or frozen (boot.py and main.py stay files:
    they are run by name)."""
    folder = Path(board["dir"])
    found = []
    for fname in board.get("files", []):
        src = (folder / fname).resolve()
        if src.name.endswith(".py") and src.name not in RUN_BY_NAME:
            found.append(src)
    return found


def freeze_files(board):
    """(path under freeze/, file) of every module a firmware freezes, as folded for a board
    (firmware_build.fold): the agent package and the board's modules."""
    folded = fold.prepare(board_modules(board))
    return list(mpy.sources([folded / "agent"])) + [(src.name, folded / src.name) for src in board_modules(board)]


def freeze_manifest_body(board):
    """The manifest's statements (no comments): also what a firmware's cache key hashes."""
    # opt=3 as the .mpy build (AGENT_MPY_ARGS): no line numbers or asserts in flash either
    lines = ['include("%s")' % freeze_include(board), 'package("agent", base_path="freeze", opt=3)']
    for rel, _ in freeze_files(board):
        if "/" not in rel:
            lines.append('module("%s", base_path="freeze", opt=3)' % rel)
    return "\n".join(lines) + "\n"


def freeze_manifest(manifest, board):
    """MicroPython's manifest.py syntax: freeze the agent and the board's modules."""
    return "\n".join([
        "# Freeze dmagent %s (board %s) into custom MicroPython %s firmware:"
        % (manifest["bundle"], manifest["board"], manifest["micropython"]),
        "#   dmagent build --board %s --firmware (or the port's make with FROZEN_MANIFEST=this file)"
        % manifest["board"],
        "# Paths are relative to this file (freeze/ holds the sources). boot.py and main.py",
        "# are not frozen: `dmagent flash` still puts them on the file system, with the config",
        "# and keys; frozen modules come before /lib on sys.path, so the /lib copies then idle.",
    ]) + "\n" + freeze_manifest_body(board)


# --- the size report ---------------------------------------------------------------------------
def size_rows(manifest):
    """(device path, .py size or None, deployed size) per file, and the totals row."""
    rows = []
    for e in _all_files(manifest):
        is_mpy = e["path"].endswith(".mpy")
        rows.append((e["path"], e["source_size"], e["size"] if is_mpy else None, e["size"]))
    return rows


def _all_files(manifest):
    """The file system's files and, on a ROMFS board, the image's (at /rom/...)."""
    return manifest["files"] + (manifest.get("romfs") or {}).get("files", [])


def size_table(manifest):
    """A rich Table: file, .py size, .mpy size, deployed; a total line."""
    from rich.table import Table

    table = Table(title="bundle %s for %s (.mpy v%s)" % (manifest["bundle"], manifest["board"], manifest["mpy"]))
    table.add_column("file")
    table.add_column(".py", justify="right")
    table.add_column(".mpy", justify="right")
    table.add_column("on the device", justify="right")
    py_total = mpy_total = 0
    for path, py_size, mpy_size, size in size_rows(manifest):
        py_total += py_size
        mpy_total += mpy_size or 0
        table.add_row(path, _kb(py_size), _kb(mpy_size) if mpy_size is not None else "(.py)", _kb(size))
    table.add_section()
    files = _all_files(manifest)
    table.add_row("total (%d files)" % len(files), _kb(py_total), _kb(mpy_total),
                  _kb(sum(e["size"] for e in files)), style="bold")
    return table


def _kb(n):
    return "%d B" % n if n < 1024 else "%.1f KiB" % (n / 1024)
