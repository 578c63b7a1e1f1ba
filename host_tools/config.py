"""The device config file on the host, read in one place: `serve --config`, `flash --config` and
the CLI's early check all come here, so a file is judged the same way everywhere.

The rules a config must follow belong to the agent (it reads the same file on a board):
once the agent's validator lands (agent/config.py, `validate(doc)` raising ValueError naming
the key), it is called here; until then only the JSON itself is checked.
"""

import json
from pathlib import Path

from dmagent.host_tools.client.errors import UsageError


class ConfigError(UsageError):
    """A config file that cannot be read or is wrong: the message names the file (and key)."""


def read_device_config(path):
    """The config dict from a JSON file; ConfigError naming the file (and the key) if bad."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError("config file %s: not found" % path) from None
    except OSError as exc:
        raise ConfigError("config file %s: %s" % (path, exc.strerror)) from None
    except ValueError as exc:
        raise ConfigError("config file %s is not valid JSON: %s" % (path, exc)) from None
    if not isinstance(doc, dict):
        raise ConfigError("config file %s: a JSON object is expected" % path)
    validate = _agent_validator()
    if validate is not None:
        try:
            validate(doc)
        except ValueError as exc:
            raise ConfigError("config file %s: %s" % (path, exc)) from None
    return doc


def _agent_validator():
    try:
        from dmagent.agent.config import validate
    except ImportError:  # not in this version of the agent yet
        return None
    return validate
