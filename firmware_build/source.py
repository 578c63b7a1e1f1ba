"""MicroPython's source, from Debian's pinned source packages, unpacked once into the cache.

Fetched with `apt-get source --download-only` through the mirror the system's apt names
(firmware_build.apt) and checked against the pins below. The "+ds" tarball has lib/'s git
submodules emptied; mbedtls goes back in from Debian's own mbedtls source (so the build has
cryptolib and hashlib's sha1/md5, as stock ESP32 firmware does). The Debian diffs are
checked but not applied: they only re-link the submodules to system libraries.
"""

import shutil
import tarfile

from dmagent.firmware_build.apt import AptError, PrivateApt, check_sha256, debian_mirror, download
from dmagent.firmware_build.mpy import ROOT

SUITE = "trixie main"
# package, version, {file: sha256} as each .dsc lists them (the .dsc's own hash too), the
# tarball to unpack, where its top folder goes in the tree ("" = the tree itself), and its
# folder in the archive's pool (used when apt cannot have the index: a mirror mid-sync)
SOURCES = (
    ("micropython", "1.25.0+ds-1", {
        "micropython_1.25.0+ds-1.dsc": "8c7c406be88a6f3bc19e694eb0bbc5841112243fdf2b5a296e000d8fdc5f3c34",
        "micropython_1.25.0+ds.orig.tar.xz": "7b25be99a502f070b2de81dafc08da7051d992325d6e67daa9045a918fffdbea",
        "micropython_1.25.0+ds-1.debian.tar.xz": "87cd89f7900c86b963885dabe25acf3e5348815993f1500278ad8f6464465af4",
    }, "micropython_1.25.0+ds.orig.tar.xz", "", "m/micropython"),
    ("mbedtls", "3.6.6-0.1~deb13u1", {
        "mbedtls_3.6.6-0.1~deb13u1.dsc": "eb9ed1adbbddcb0d00276fac6fcee0056c64ce01481c2522a16dca75792eb5eb",
        "mbedtls_3.6.6.orig.tar.bz2": "8fb65fae8dcae5840f793c0a334860a411f884cc537ea290ce1c52bb64ca007a",
        "mbedtls_3.6.6-0.1~deb13u1.debian.tar.xz": "210466c522eeebc85cf2f76bd5aef935b4ebac465559cc0a84f9e73a8ed6601c",
    }, "mbedtls_3.6.6.orig.tar.bz2", "lib/mbedtls", "m/mbedtls"),
)
VERSION = SOURCES[0][1]

CACHE = ROOT / ".cache"


def source_dir():
    return CACHE / ("micropython-src-" + VERSION)


def source_key():
    """What the sources contribute to a firmware's cache key: every pinned hash."""
    return " ".join(sorted(d for _, _, pins, _, _, _ in SOURCES for d in pins.values()))


def tree(log=print):
    """The unpacked source tree (fetched and checked first if it is not in the cache)."""
    root = source_dir()
    stamp = root / ".complete"
    if stamp.exists() and stamp.read_text().strip() == source_key():
        return root / "src"
    work = root.with_name(root.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    mirror = debian_mirror()
    try:
        _fetch_with_apt(mirror, work, log)
    except AptError as exc:
        log("firmware: %s; fetching the pinned files from the pool instead" % exc)
        _fetch_from_pool(mirror, work, log)
    for package, version, pins, tarball, place, _ in SOURCES:
        files = work / "files" / package
        for name, digest in pins.items():
            if not (files / name).is_file():
                raise AptError("the source of %s %s has no %s" % (package, version, name))
            check_sha256(files / name, digest)
        _unpack(files / tarball, work / "src" / place)
    if not (work / "src" / "ports" / "unix").is_dir():
        raise AptError("the MicroPython source has no ports/unix")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (work / "src").rename(root / "src")
    shutil.rmtree(work, ignore_errors=True)
    stamp.write_text(source_key() + "\n")
    return root / "src"


def _fetch_with_apt(mirror, work, log):
    apt = PrivateApt(work / "apt", ["deb-src %s %s" % (mirror, SUITE)])
    log("firmware: apt-get update (a private deb-src list for %s %s)" % (mirror, SUITE))
    apt.update()
    for package, version, _, _, _, _ in SOURCES:
        log("firmware: fetching Debian source %s %s" % (package, version))
        files = work / "files" / package
        shutil.rmtree(files, ignore_errors=True)
        files.mkdir(parents=True)
        apt.run(["source", "--download-only", "%s=%s" % (package, version)], files,
                "apt-get source %s=%s" % (package, version))


def _fetch_from_pool(mirror, work, log):
    for package, version, pins, _, _, pool in SOURCES:
        files = work / "files" / package
        shutil.rmtree(files, ignore_errors=True)
        files.mkdir(parents=True)
        for name, digest in pins.items():
            download("%s/pool/main/%s/%s" % (mirror, pool, name), files / name, digest)


def _unpack(tarball, dest):
    """Unpack tarball's single top folder as dest (dest may already hold other files)."""
    try:
        _extract(tarball, dest)
    except tarfile.TarError as exc:
        raise AptError("cannot unpack %s: %s" % (tarball.name, exc)) from None


def _extract(tarball, dest):
    with tarfile.open(tarball) as tar:
        members = tar.getmembers()
        top = members[0].name.split("/", 1)[0]
        for member in members:
            parts = member.name.split("/", 1)
            if parts[0] != top:
                raise AptError("%s has more than one top folder" % tarball.name)
            member.name = parts[1] if len(parts) > 1 else "."
        members = [m for m in members if m.name != "."]
        dest.mkdir(parents=True, exist_ok=True)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members, filter="data")
        else:
            tar.extractall(dest, members)


def checkout_problem(port, submodule):
    """None when MICROPY_DIR names a MicroPython checkout whose `port` can be built (its
    `submodule` fetched), else the one line that says what to do. The esp32 and rp2 ports
    need submodules Debian's "+ds" source empties."""
    import os
    from pathlib import Path

    top = os.environ.get("MICROPY_DIR")
    if not top or not (Path(top) / "ports" / port / "Makefile").is_file():
        return ("%s firmware needs MICROPY_DIR set to a MicroPython v1.25.0 checkout with its "
                "submodules (make -C ports/%s submodules)" % (port, port))
    folder = Path(top) / submodule
    if not folder.is_dir() or not any(folder.iterdir()):
        return "MICROPY_DIR %s has no %s: run make -C ports/%s submodules there" % (top, submodule, port)
    return None
