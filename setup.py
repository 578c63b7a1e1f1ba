"""The wheel's layout: the clone's agent/, host_tools/, firmware_build/ and boards/ go inside one
`dmagent` package (metadata is in pyproject.toml). Computed, so a new subpackage needs no edit."""

from setuptools import find_packages, setup

TOP = ("agent", "host_tools", "firmware_build", "boards")

packages = ["dmagent"] + ["dmagent." + p for p in find_packages(include=[t + s for t in TOP for s in ("", ".*")])]
setup(
    packages=packages,
    package_dir={"dmagent": "dmagent", **{"dmagent." + t: t for t in TOP}},
    package_data={
        # the boards' files (board.json, main.py, configs, units) and the virtual board's
        # JavaScript with its pinned npm set-up; node_modules is made by `npm ci` when used
        "dmagent.boards": ["*/*"],
        "dmagent.host_tools.vboard": ["js/*"],
        "dmagent.host_tools.ddf": ["data/*.dtd", "data/*.xml"],
    },
)
