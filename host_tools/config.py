"""The device config file on the host, read in one place: `serve --config`, `flash --config` and
the CLI's early check all come here, so a file is judged the same way everywhere.

The rules belong to the agent, which reads the same file on a board: where the agent has its
loader (agent/config.py: load(path) raising ConfigError, a ValueError naming file and key),
this calls it; an agent without one gets the JSON itself checked here.
"""

import json
from pathlib import Path

from dmagent.host_tools.client.errors import UsageError


class ConfigError(UsageError):
    """A config file that cannot be read or is wrong: the message names the file (and key)."""


def read_device_config(path):
    """The config dict from a JSON file; ConfigError naming the file (and the key) if bad."""
    agent_loader = _agent_loader()
    if agent_loader is not None:
        try:
            return agent_loader(str(path))
        except ValueError as exc:  # the agent's ConfigError
            raise ConfigError(str(exc)) from None
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError("config %s: not found" % path) from None
    except OSError as exc:
        raise ConfigError("config %s: cannot be read (%s)" % (path, exc.strerror)) from None
    except ValueError as exc:
        raise ConfigError("config %s: not valid JSON (%s)" % (path, exc)) from None
    if not isinstance(doc, dict):
        raise ConfigError("config %s: a JSON object is expected" % path)
    return doc


def _agent_loader():
    try:
        from dmagent.agent import config
    except ImportError:  # an agent without its own loader
        return None
    return getattr(config, "load", None)
