"""Where the project's own files are, in a clone or installed: the one place the host tools look
for agent/, boards/ and the rest, and for the folders they write into.

Installed, the package folder may not be writable: caches, builds and the virtual board's npm
packages then go to the user's cache folder, never beside the code.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # holds agent/, boards/, firmware_build/, host_tools/
AGENT_DIR = ROOT / "agent"
BOARDS_DIR = ROOT / "boards"
DEMO_CONFIG = BOARDS_DIR / "unix" / "demo-config.json"
VBOARD_JS = ROOT / "host_tools" / "vboard" / "js"  # board.mjs, package.json, package-lock.json
IN_CLONE = (ROOT / "pyproject.toml").is_file()  # a clone (or an editable install), not a wheel


def cache_dir():
    """DMAGENT_CACHE, else .cache in a clone, else the user's cache folder (XDG_CACHE_HOME)."""
    env = os.environ.get("DMAGENT_CACHE")
    if env:
        return Path(env)
    if IN_CLONE:
        return ROOT / ".cache"
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("dmagent", appauthor=False))
    except ImportError:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dmagent"


def build_dir():
    """Where `dmagent build` puts bundles by default: build/ in a clone, else the cache folder."""
    return ROOT / "build" if IN_CLONE else cache_dir() / "build"
