"""One start-up path for every board (boards/*/main.py): buffers, code, config, keys, agent.

The order is the rule (docs/memory.md): frame buffers while the heap is whole, then code,
config, the agent's boot, keys; boot-only code (this module too) leaves before serving.
A console board's escape window is agent.escape, loaded only where there is one.
"""

import gc
import json

CONFIG = "dmagent.json"
KEYS = "keys"
STATE = "state"


def reserve(links):
    """First thing in main.py: the buffers of the links to come, each in one piece."""
    from . import frame, server

    frame.reserve(links)
    while len(server.read_spare) < links:  # boot-only: here, not in agent.server
        server.read_spare.append(bytearray(server.READ_CHUNK))


def load_config(path=CONFIG, checked=False):
    """The device config (`dmagent flash` writes it, `dmagent serve` names it); {} if there is
    none. Through the one loader (agent.config): unknown keys and wrong types raise
    ConfigError, one line. checked: the host ran that loader on this very file already,
    where the heap is plentiful; here it would cost what boot can ill spare."""
    if checked:
        with open(path) as f:
            return json.load(f)
    from . import config as checker
    from . import unload

    try:
        return checker.load(path, missing_ok=True)
    finally:
        unload(".config")


def console_wanted(config):
    """Whether the agent serves the console (config "console": true, false or a map)."""
    return config.get("console", True) is not False


def halt(exc, say=print):
    """A board with keys that cannot boot: never the REPL (it reads every key and the device
    key). Says why every 10 s until a reset; `dmagent flash --firmware` erases such a board."""
    import time

    while True:
        say("dmagent: cannot start: %r; a board with keys keeps its console closed" % (exc,))
        time.sleep(10)


def boot_or_halt(boot, keyed):
    """boot() -> what it gives, the one rule for a console board that cannot boot: with keys it
    halts (never the REPL); without, a bad config (ConfigError) is one line and None (the
    REPL), anything else raises (the REPL, with the traceback: there is nothing to hide)."""
    try:
        return boot()
    except Exception as exc:
        if keyed:
            halt(exc)
        if isinstance(exc, ValueError):
            print("dmagent: %s; not started, this is the REPL" % exc)
            return None
        raise


def secrets(state=STATE):
    """Where the device key lives: ESP32's NVS, else a file in the state folder."""
    try:
        import esp32

        return esp32.NVS("dmagent")
    except (ImportError, AttributeError):
        from .keywrap import FileSecrets

        _mkdir(state)
        return FileSecrets(state + "/secrets")


def _mkdir(path):
    import os

    try:
        os.mkdir(path)
    except OSError:
        pass  # there already


def has_keys(path=KEYS):
    from . import keys

    return keys.has_keys(path)


def load_keys(paths, store=None, rewrap=False):
    """{principal: key} from key files ({} without any); plain ones are wrapped if rewrap."""
    from . import keys

    found = [p for p in paths if keys.has_keys(p)]
    return keys.load(found, secrets=store, rewrap=rewrap) if found else {}


def make_app(config, state, keys, log, insecure=False):
    """The agent, then the heap cleared of what only boot needed (App unloads its own)."""
    from .app import App

    app = App(config, state, insecure or bool(config.get("insecure")), log, keys=keys)
    gc.collect()
    return app


def board_app(config, log, store, rewrap=True):
    """A console board's agent from its own folders: keys (wrapped under the device key
    from store, plain ones wrapped now, after the boot's peak), state, the config."""
    return make_app(config, STATE, lambda: load_keys([KEYS], store, rewrap), log)
