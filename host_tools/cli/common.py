"""What every `dmagent` command shares: the device options (before or after the verb), the user's
defaults file, one JSON shape, and one line with a hint for every mistake.

A command never prints a traceback: library errors (DmagentError and its kin) become
`error: ...` plus `hint: ...`, or with --json {"status", "error", "hint", ...}, and an exit code.
"""

import base64
import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from dmagent.host_tools.client.errors import DmagentError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # an error stays one line

EXIT_STATUS = 1  # the device answered with a non-2xx status
EXIT_LINK = 2  # no answer, or the link could not be opened
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# The defaults file: {"device": URL, "as": ID, "key": FILE, "timeout": SECONDS}
CONFIG_KEYS = {"device": str, "as": str, "key": str, "timeout": (int, float)}


def config_path():
    """<user config folder>/dmagent/config.json (honours XDG_CONFIG_HOME, as the key store does)."""
    return Path(click.get_app_dir("dmagent")) / "config.json"


def load_defaults(path=None):
    """The user's defaults; a missing file is none, a bad one is a UsageError naming file and key."""
    from dmagent.host_tools.client.errors import UsageError

    path = Path(path) if path else config_path()
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError("cannot read %s: %s" % (path, exc.strerror)) from None
    except ValueError as exc:
        raise UsageError("%s is not valid JSON: %s" % (path, exc)) from None
    if not isinstance(doc, dict):
        raise UsageError("%s: a JSON object is expected" % path, "e.g. {\"device\": \"tcp://127.0.0.1:7000\"}")
    for key, value in doc.items():
        if key not in CONFIG_KEYS:
            raise UsageError("%s: unknown key %r" % (path, key), "known keys: " + ", ".join(CONFIG_KEYS))
        if not isinstance(value, CONFIG_KEYS[key]) or isinstance(value, bool):
            raise UsageError("%s: %r must be a %s, not %r" % (path, key, "number" if key == "timeout" else "string",
                                                             value))
    return doc


class Options:
    """The device options of one invocation: the group's, overridden by the verb's."""

    def __init__(self):
        self.device = None
        self.principal = None
        self.key = None
        self.for_server = None
        self.json = False
        self.timeout = None
        self.verbose = 0
        self.state = None  # what Ctrl-C leaves behind, said in one line (set by long commands)
        self.session = None  # an open Device every device command uses (`dmagent shell`)


def options(ctx=None):
    ctx = ctx or click.get_current_context(silent=True)
    obj = ctx.find_object(Options) if ctx else None
    if obj is None:  # a command invoked on its own (tests, python -m)
        obj = Options()
        if ctx is not None:
            ctx.obj = obj
    return obj


def _store(attr):
    def callback(ctx, param, value):
        if value is not None and value is not False and value != 0:
            setattr(options(ctx), attr, value)
        return value

    return callback


def device_options(fn):
    """-d, --as, --key, --for, --json, --timeout, -v: the same before the verb or after it."""
    specs = [
        click.option("-d", "--device", metavar="URL", expose_value=False, callback=_store("device"),
                     help="tcp://HOST:PORT, serial:///dev/ttyX?baud=N, /dev/ttyX, or auto (env DMAGENT_DEVICE)"),
        click.option("--as", "principal", metavar="SERVERID", expose_value=False, callback=_store("principal"),
                     help="act as this principal: its key from --key or the key store (`dmagent keys list`); "
                          "without a key, named in hello (--insecure agents only)"),
        click.option("--key", metavar="FILE", expose_value=False, callback=_store("key"),
                     help="a key file: handshake as its principal, seal every request (env DMAGENT_KEY)"),
        click.option("--for", "for_server", metavar="SERVERID", expose_value=False, callback=_store("for_server"),
                     help="as a gateway with --key: act for this ServerID"),
        json_option,
        click.option("--timeout", type=float, metavar="SECONDS", expose_value=False, callback=_store("timeout"),
                     help="seconds to wait for each answer [default: 2.0]"),
        click.option("-v", "--verbose", count=True, expose_value=False, callback=_store("verbose"),
                     help="show each frame's op, status and timing"),
    ]
    for spec in reversed(specs):
        fn = spec(fn)
    return fn


json_option = click.option("--json", "as_json", is_flag=True, default=None, expose_value=False,
                           callback=_store("json"), help="print one JSON object")


def _to_json(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError("not JSON serialisable: %r" % type(value))


def emit_json(status=200, error=None, hint=None, **fields):
    """Every JSON answer: status, error (a message, or null), hint when there is one, then fields."""
    doc = {"status": status, "error": error}
    if hint:
        doc["hint"] = hint
    doc.update(fields)
    click.echo(json.dumps(doc, default=_to_json, ensure_ascii=False))


def fail(message, hint=None, code=EXIT_USAGE, status=None):
    """One line (and a hint), or the JSON shape with --json; then exit."""
    if options().json:
        emit_json(status, message, hint)
    else:
        err_console.print("[red]error:[/] %s" % escape(message), soft_wrap=True)
        if hint:
            err_console.print("[dim]hint:[/] %s" % escape(hint), soft_wrap=True)
    sys.exit(code)


def fail_for(exc):
    """A library exception as fail() says it, with the exit code its kind means."""
    from dmagent.host_tools.client.device import DeviceError
    from dmagent.host_tools.client.transport import LinkError

    text = str(exc).split("\nhint: ")[0]
    hint = getattr(exc, "hint", None)
    if isinstance(exc, DeviceError):
        fail(text, hint or _status_hint(exc.status), EXIT_STATUS, exc.status)
    fail(text, hint, EXIT_LINK if isinstance(exc, LinkError) else EXIT_USAGE)


def _status_hint(status):
    if status == 425:
        return "`dmagent acl URI` shows who may do what there, and which node's ACL decides"
    if status == 401:
        return "the device does not know this key: check --key / --as against `dmagent keys list`"
    return None


class DmagentGroup(click.Group):
    """click's group, with one line instead of a traceback for anything that escapes a command."""

    argv = ()  # this invocation's arguments: a usage error is JSON too if --json is among them

    def main(self, args=None, *rest, **kwargs):
        self.argv = list(sys.argv[1:] if args is None else args)
        return super().main(args, *rest, **kwargs)

    def invoke(self, ctx):
        if ctx.obj is None:
            ctx.obj = Options()  # one for the group and its verb (they inherit it)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            state = options(ctx).state or "nothing was left half done"
            err_console.print("interrupted: %s" % state, markup=False, soft_wrap=True)
            sys.exit(EXIT_INTERRUPTED)
        except DmagentError as exc:
            fail_for(exc)
        except OSError as exc:  # a file named on the command line, most often
            name = " %s" % exc.filename if getattr(exc, "filename", None) else ""
            fail("%s%s" % (exc.strerror or exc, name))
        except click.UsageError as exc:  # a verb's options: JSON too when JSON was asked for
            if not (options(ctx).json or "--json" in self.argv):
                raise
            emit_json(None, exc.format_message(), "`dmagent %s -h` lists its options"
                      % (exc.ctx.info_name if exc.ctx else "VERB"))
            sys.exit(EXIT_USAGE)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: still one line, the traceback on request
            if os.environ.get("DMAGENT_DEBUG"):
                raise
            fail("internal error: %s: %s" % (type(exc).__name__, exc),
                 "a bug in dmagent: DMAGENT_DEBUG=1 shows the traceback to report")


def check_device_config(path):
    """Refuse a bad device config before anything starts (host_tools/config.py judges it)."""
    from dmagent.host_tools.config import read_device_config

    return read_device_config(path)


def env_default(name):
    value = os.environ.get(name)
    return value or None
