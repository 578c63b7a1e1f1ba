"""Rewrite imports for the one-package layout: relative inside agent/, `dmagent.` on the host.

Idempotent: run it again after merging branches that still wrote the old forms
(`python3 tools/relative_imports.py`; `--check` lists what it would change, exit 1 if any).
Code that runs on a board keeps the device's names: agent/ imports itself relatively,
boards/, tests/agent/ and tools/*_mpy.py import `agent` as the top-level package a board has.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "host_tools", "firmware_build", "boards")
# Host code: imports the project as the installed package does.
HOST = ("host_tools", "firmware_build", "tests/host", "tests/fuzz.py", "tools/mpytest", "Makefile",
        "README.md", "docs", "boards")  # docs: `python -m ...` and `from ...` lines in examples

_FROM = re.compile(r"^(\s*)from agent((?:\.\w+)*) import ", re.M)
# A host file's line that runs on MicroPython says so (`# on a board`) and keeps its name.
_BOARD = r"(?![^\n]*# on a board)"
_HOST_FROM = re.compile(r"^(\s*)from (%s)\b%s" % ("|".join(PACKAGES), _BOARD), re.M)
_HOST_IMPORT = re.compile(r"^(\s*)import (%s)(\.[\w.]+)?%s(\s|$)" % ("|".join(PACKAGES), _BOARD), re.M)
# `python -m host_tools.x` in commands, docstrings and argv lists
_RUN_MODULE = re.compile(r"""(-m[ "',]+)(%s)\.""" % "|".join(PACKAGES))


def agent_relative(text, depth):
    """`from agent[.x] import y` in a module depth folders below agent/ -> `from .[x] import y`."""
    dots = "." * depth

    def sub(m):
        rest = m.group(2)[1:]  # drop the leading dot
        return "%sfrom %s%s import " % (m.group(1), dots, rest)

    return _FROM.sub(sub, text)


def host_form(text):
    """Host imports of the project -> the dmagent package (`from dmagent.agent import x`)."""
    text = _HOST_FROM.sub(lambda m: "%sfrom dmagent.%s" % (m.group(1), m.group(2)), text)

    def imp(m):
        indent, name, sub, tail = m.group(1), m.group(2), m.group(3), m.group(4)
        if sub:  # `import host_tools.vboard.board` keeps its dotted use working as dmagent.host_tools...
            return "%simport dmagent.%s%s%s" % (indent, name, sub, tail)
        return "%sfrom dmagent import %s%s" % (indent, name, tail)

    text = _HOST_IMPORT.sub(imp, text)
    return _RUN_MODULE.sub(lambda m: "%sdmagent.%s." % (m.group(1), m.group(2)), text)


def files():
    for path in sorted((ROOT / "agent").rglob("*.py")):
        yield path, "agent"
    for entry in HOST:
        target = ROOT / entry
        if target.is_dir():
            pattern = "*.md" if entry in ("docs", "boards") else "*.py"  # boards/*.py run on a board
            for path in sorted(target.rglob(pattern)):
                yield path, "host"
        elif target.exists():
            yield target, "host"


def rewrite(path, kind):
    text = path.read_text()
    if kind == "agent":
        depth = len(path.relative_to(ROOT / "agent").parts)  # agent/x.py: 1, agent/mo/x.py: 2
        new = agent_relative(text, depth)
    else:
        new = host_form(text)
    return text, new


_ABSOLUTE_SELF = re.compile(r"^\s*import agent\b", re.M)


def main(argv):
    check = "--check" in argv
    changed = []
    for path, kind in files():
        old, new = rewrite(path, kind)
        if kind == "agent" and _ABSOLUTE_SELF.search(new):
            print("%s: `import agent` inside the agent: write `from . import name` by hand"
                  % path.relative_to(ROOT), file=sys.stderr)
        if new != old:
            changed.append(path.relative_to(ROOT))
            if not check:
                path.write_text(new)
    for rel in changed:
        print(("would change " if check else "rewrote ") + str(rel))
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
