"""Debian packages fetched through the system's own apt mirror, with a private apt set-up.

The mirror is whatever /etc/apt/sources.list(.d) already names for Debian: no host name is
written here. Every call passes a private sources list, lists and cache folder, so the
system's apt state is never touched.
"""

import hashlib
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

APT_ETC = Path("/etc/apt")
# A Debian release's own suite, as opposed to its -security / -updates / -backports pockets.
_RELEASE = re.compile(r"^(buster|bullseye|bookworm|trixie|forky|duke|sid|oldstable|stable|testing|unstable)$")


class AptError(RuntimeError):
    """An apt step failed or a fetched file does not match its pin; the message says which."""


def debian_mirror(etc=APT_ETC):
    """The base URI (e.g. http://<mirror>/debian) of the first Debian archive the system's apt
    sources name for a release suite; AptError when none does."""
    for uri, suites in _sources(Path(etc)):
        if any(_RELEASE.match(s) for s in suites) and "security" not in uri:
            return uri.rstrip("/")
    raise AptError("no Debian mirror in %s/sources.list or %s/sources.list.d: add the Debian archive "
                   "your machine uses there" % (etc, etc))


def _sources(etc):
    """(uri, [suites]) of every deb/deb-src entry, one-line and deb822 formats, in apt's order."""
    found = []
    one_line = [etc / "sources.list"] + sorted((etc / "sources.list.d").glob("*.list"))
    for path in one_line:
        for line in _read(path).splitlines():
            words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] in ("deb", "deb-src"):
                found.append((words[1], [words[2]]))
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", _read(path)):
            fields = {}
            for line in stanza.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith(("#", " ", "\t")):
                    fields[key.strip().lower()] = value.split()
            if fields.get("enabled", ["yes"])[0].lower() == "no":
                continue
            for uri in fields.get("uris", []):
                found.append((uri, fields.get("suites", [])))
    return found


def _read(path):
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


class PrivateApt:
    """apt-get with its own sources list, lists and cache under work/."""

    def __init__(self, work, source_lines, arch=None):
        if not shutil.which("apt-get"):
            raise AptError("apt-get is not on this machine (a Debian or Ubuntu host fetches these)")
        self.work = Path(work)
        (self.work / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.work / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        sources = self.work / "sources.list"
        sources.write_text("".join(line + "\n" for line in source_lines))
        self.opts = [
            "-o", "Dir::Etc::SourceList=%s" % sources,
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", "Dir::State::Lists=%s" % (self.work / "lists"),
            "-o", "Dir::Cache=%s" % (self.work / "cache"),
            "-o", "APT::Sandbox::User=root",
        ]
        if arch:
            self.opts += ["-o", "APT::Architecture=%s" % arch, "-o", "APT::Architectures=%s" % arch]

    def run(self, args, cwd, what):
        proc = subprocess.run(["apt-get", "-q"] + self.opts + list(args), cwd=str(cwd),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            errors = [line for line in lines if line.startswith("E: ")]
            raise AptError("%s failed: %s" % (what, (errors or lines[-1:] or ["exit %d" % proc.returncode])[0]))

    def update(self):
        # --error-on=any: an index that cannot be fetched is an error, not a warning (exit 0)
        self.run(["update", "--error-on=any"], self.work, "apt-get update (private lists)")


def check_sha256(path, digest):
    """AptError unless the file's sha256 is the pinned one."""
    have = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if have != digest:
        raise AptError("%s does not match its pinned sha256 (%s..., pinned %s...)"
                       % (Path(path).name, have[:12], digest[:12]))


def download(url, dest, digest):
    """Fetch url to dest, checked against its pinned sha256; AptError otherwise."""
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            Path(dest).write_bytes(answer.read())
    except OSError as exc:
        raise AptError("cannot download %s: %s" % (url, exc)) from None
    check_sha256(dest, digest)
