"""dmagent, one package: `dmagent.agent` (the device agent), `dmagent.host_tools` (library and
CLI), `dmagent.firmware_build`, `dmagent.boards`.

In a clone the four live beside this folder (the wheel maps them inside it): this package's
path then takes in the clone's root, so `dmagent.agent` is the clone's agent/ either way.
"""

from pathlib import Path as _Path

_here = _Path(__file__).resolve().parent
if not (_here / "agent").is_dir() and (_here.parent / "agent" / "proto.py").is_file():
    __path__.append(str(_here.parent))  # noqa: F821  (a package's __path__)
