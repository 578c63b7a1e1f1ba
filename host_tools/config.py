"""The device config on the host, judged in one place: `serve --config`, `flash --config` and
the CLI's early check all come here, and here is only the agent's own loader (agent/config.py),
which a board runs on the same file: one rule, so a file is judged the same way everywhere.
"""

from dmagent.agent import config as checker
from dmagent.host_tools.client.errors import UsageError


class ConfigError(UsageError):
    """A config that cannot be read or is wrong: one line naming the file (and the key)."""


def read_device_config(path):
    """The config dict from a JSON file; ConfigError naming the file (and the key) if bad."""
    try:
        return checker.load(str(path))
    except checker.ConfigError as exc:
        raise ConfigError(str(exc)) from None


def check_device_config(config, name="given"):
    """A config given as a dict, checked by the same rules; ConfigError if bad."""
    try:
        return checker.check(config, name)
    except checker.ConfigError as exc:
        raise ConfigError(str(exc)) from None
