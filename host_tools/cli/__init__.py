"""The `dmagent` command: thin click commands over the library; the protocol lives elsewhere."""

from dmagent.host_tools.cli.main import main  # noqa: F401
