"""The `dmagent` command: a thin layer over host_tools' library.

Each verb parses its arguments, calls one library function and prints the result, for
people by default and as one JSON object with --json. A mistake gets one readable line
and a non-zero exit, never a traceback.
"""

import base64
import functools
import json
import sys

import click
from rich.console import Console
from rich.tree import Tree as RichTree

from dmagent.agent import proto as P
from dmagent.host_tools.client.device import Device, DeviceError, LinkError, status_text

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # an error stays one line

EXIT_STATUS = 1  # the device answered with a non-2xx status
EXIT_LINK = 2  # no answer, or the link could not be opened
EXIT_USAGE = 2


def _to_json(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError("not JSON serialisable: %r" % type(value))


def _emit_json(obj):
    click.echo(json.dumps(obj, default=_to_json, ensure_ascii=False))


def parse_value(text, fmt):
    """CLI text -> the CBOR value a format wants."""
    try:
        if fmt == "int":
            return int(text, 0)
        if fmt == "float":
            return float(text)
        if fmt == "bool":
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError("bool is true or false")
            return lowered in ("true", "1")
        if fmt == "bin":
            return bytes.fromhex(text[2:] if text.startswith("0x") else text)
        if fmt == "b64":
            return base64.b64decode(text, validate=True)
        if fmt in ("null", "node"):
            return None
    except ValueError as exc:
        raise click.BadParameter("%r is not a valid %s value (%s)" % (text, fmt, exc)) from None
    return text


def show_value(value):
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if value is None:
        return "(null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Context:
    def __init__(self, device, principal, as_json, timeout, key=None, for_server=None):
        self.url = device
        self.principal = principal
        self.json = as_json
        self.timeout = timeout
        self.key = key
        self.for_server = for_server

    def open(self):
        if not self.url:
            raise click.UsageError("no device: give -d/--device URL or set DMAGENT_DEVICE")
        key_file = self.key
        if not key_file and self.principal:  # --as with a key in the user's store: use it
            from dmagent.host_tools.client.keys import find_key

            key_file = find_key(self.principal)
        if key_file:
            from dmagent.host_tools.client.secure import read_key_file

            try:
                principal, key = read_key_file(key_file)
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None
            return Device.open(self.url, timeout=self.timeout, principal=principal, key=key,
                               for_server=self.for_server)
        if self.for_server:
            raise click.UsageError("--for needs --key: only an authenticated gateway acts for a server")
        return Device.open(self.url, timeout=self.timeout, principal=self.principal)


def device_command(fn):
    """Open the device, run the verb, turn every failure into one line and an exit code."""

    @click.pass_obj
    @functools.wraps(fn)
    def wrapper(ctx, *args, **kwargs):
        try:
            with ctx.open() as dev:
                result = fn(ctx, dev, *args, **kwargs)
        except DeviceError as exc:
            if ctx.json:
                _emit_json({"status": exc.status, "meaning": status_text(exc.status), "message": exc.message})
            else:
                err_console.print("[red]error:[/] %s" % exc)
            sys.exit(EXIT_STATUS)
        except LinkError as exc:
            if ctx.json:
                _emit_json({"status": None, "error": str(exc)})
            else:
                err_console.print("[red]error:[/] %s" % exc)
            sys.exit(EXIT_LINK)
        return result

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-d", "--device", envvar="DMAGENT_DEVICE", metavar="URL",
              help="tcp://HOST:PORT, serial:///dev/ttyX?baud=N or /dev/ttyX (env DMAGENT_DEVICE)")
@click.option("--as", "principal", metavar="SERVERID", help="the ServerID to name in hello (--insecure agents only)")
@click.option("--key", metavar="FILE", envvar="DMAGENT_KEY",
              help="a key file (dmagent key format): handshake as its principal, seal every request")
@click.option("--for", "for_server", metavar="SERVERID", help="as a gateway with --key: act for this ServerID")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--timeout", default=2.0, show_default=True, help="seconds to wait for each answer")
@click.version_option(package_name="dmagent")
@click.pass_context
def main(click_ctx, device, principal, key, for_server, as_json, timeout):
    """Drive a dmagent device: read and change its OMA DM tree and ACLs."""
    click_ctx.obj = Context(device, principal, as_json, timeout, key, for_server)


# --- client verbs ------------------------------------------------------------------
@main.command()
@device_command
def info(ctx, dev):
    """Versions, limits and features of the agent."""
    data = dev.info()
    if ctx.json:
        _emit_json({"status": 200, "value": data})
        return
    for key in sorted(data):
        console.print("[bold]%-10s[/] %s" % (key, data[key]))


@main.command()
@click.argument("uri")
@click.option("--prop", metavar="NAME", help="a property: ACL Format Name Size Title Type")
@device_command
def get(ctx, dev, uri, prop):
    """The value of a leaf, the children of a node, or a property."""
    value, fmt = dev.get_with_format(uri, prop)
    if ctx.json:
        _emit_json({"status": 200, "value": value, "format": fmt})
    elif isinstance(value, list):
        for name in value:
            console.print(name)
    else:
        console.print(show_value(value))


@main.command()
@click.argument("uri")
@click.option("--value", metavar="V", help="the leaf's value")
@click.option("--format", "fmt", type=click.Choice(P.FORMATS), help="the leaf's format (default: chr, or node)")
@click.option("--interior", is_flag=True, help="add an interior node")
@device_command
def add(ctx, dev, uri, value, fmt, interior):
    """Add a leaf or an interior node."""
    if interior and value is not None:
        raise click.UsageError("an interior node has no value")
    fmt = "node" if interior else (fmt or ("chr" if value is not None else "node"))
    dev.add(uri, None if value is None else parse_value(value, fmt), fmt)
    _ok(ctx, "added %s" % uri)


@main.command()
@click.argument("uri")
@click.option("--value", metavar="V", required=True, help="the new value")
@click.option("--format", "fmt", type=click.Choice(P.FORMATS), help="default: the leaf's current format")
@click.option("--prop", metavar="NAME", help="replace a property instead: ACL Name Title")
@device_command
def replace(ctx, dev, uri, value, fmt, prop):
    """Replace a leaf's value (or a property: ACL, Name, Title)."""
    if prop is None and fmt is None:
        fmt = dev.get(uri, prop="Format")
    dev.replace(uri, value if prop else parse_value(value, fmt), None if prop else fmt, prop=prop)
    _ok(ctx, "replaced %s" % (uri if prop is None else "%s?prop=%s" % (uri, prop)))


@main.command()
@click.argument("uri")
@device_command
def delete(ctx, dev, uri):
    """Delete a node and everything below it."""
    dev.delete(uri)
    _ok(ctx, "deleted %s" % uri)


@main.command(name="exec")
@click.argument("uri")
@click.option("--data", metavar="D", help="data handed to the Exec handler")
@device_command
def exec_(ctx, dev, uri, data):
    """Execute a node (run its handler)."""
    status, result = dev.exec(uri, data)
    if ctx.json:
        _emit_json({"status": status, "value": result})
    else:
        console.print("%d %s%s" % (status, status_text(status), "" if result is None else ": %s" % show_value(result)))


@main.command()
@click.argument("uri")
@click.option("--set", "new_acl", metavar="ACL", help="replace the node's own ACL, e.g. 'Get=*&Replace=ServerA'")
@device_command
def acl(ctx, dev, uri, new_acl):
    """A node's own ACL, its effective ACL, and where that comes from."""
    if new_acl is not None:
        dev.set_acl(uri, new_acl)
    own, effective, source = dev.acl(uri)
    if ctx.json:
        _emit_json({"status": 200, "acl": own, "effective": effective, "from": source})
        return
    console.print("[bold]own      [/] %s" % (own or "(empty: inherits)"))
    console.print("[bold]effective[/] %s" % effective)
    console.print("[bold]from     [/] %s" % source)


@main.command()
@click.argument("uri")
@click.option("--server", required=True, metavar="ID", help="the ServerID whose right is checked")
@click.option("--cmd", required=True, type=click.Choice(P.COMMANDS), help="the command")
@device_command
def check(ctx, dev, uri, server, cmd):
    """May SERVER do CMD on URI? And which node's ACL decides."""
    allowed, source = dev.check(uri, server, cmd)
    if ctx.json:
        _emit_json({"status": 200, "allowed": allowed, "from": source})
        return
    verdict = "[green]allowed[/]" if allowed else "[red]denied[/]"
    console.print("%s: %s %s on %s (decided by the ACL of %s)" % (verdict, server, cmd, uri, source))


@main.command()
@click.argument("uri", default=".")
@device_command
def tree(ctx, dev, uri):
    """Draw the tree below URI (only what you may Get)."""
    entries = list(dev.list(uri, data=True))
    if ctx.json:
        _emit_json({"status": 200, "value": [[u, v] for u, v in entries]})
        return
    console.print(draw_tree(entries))


def draw_tree(entries):
    """[(uri, value)] in depth-first order -> a rich Tree (interior nodes have value None and children)."""
    uris = [u for u, _ in entries]
    root = RichTree("[bold]%s[/]" % (uris[0] if uris else "."))
    branches = {uris[0]: root} if uris else {}
    for uri, value in entries[1:]:
        parent_uri, _, name = uri.rpartition("/")
        parent = branches.get(parent_uri, root)
        is_interior = any(other.startswith(uri + "/") for other in uris)
        label = "[bold]%s[/]" % name if is_interior else "%s = %s" % (name, show_value(value))
        branches[uri] = parent.add(label)
    return root


def _ok(ctx, text):
    if ctx.json:
        _emit_json({"status": 200})
    else:
        console.print(text)


# --- serving ------------------------------------------------------------------------
@main.command()
@click.option("--tcp", metavar="HOST:PORT", help="listen on TCP (port 0: any free port)")
@click.option("--serial", "serial_ports", multiple=True, metavar="DEV[@BAUD]", help="serve a serial port")
@click.option("--pty", is_flag=True, help="serve a new pseudo-terminal and print its path")
@click.option("--state", metavar="DIR", help="state folder (journal and snapshot); none: nothing persists")
@click.option("--config", metavar="FILE", help="device config (JSON)")
@click.option("--keys", "key_paths", multiple=True, metavar="PATH",
              help="a key file or a folder of them (repeatable): the principals that may connect")
@click.option("--insecure", is_flag=True, help="DEVELOPMENT ONLY: let a link name its principal in hello")
@click.option("--runtime", type=click.Choice(["cpython", "micropython", "micropython-frozen"]), default="cpython",
              show_default=True, help="micropython: the agent as .mpy files; micropython-frozen: frozen into the firmware")
@click.option("--heap", default="110k", show_default=True, help="heap size for the MicroPython runtimes")
@click.option("--bundle", metavar="DIR", type=click.Path(file_okay=False),
              help="with --runtime micropython: run this built bundle's .mpy files (`dmagent build`)")
@click.option("--recover", is_flag=True,
              help="the state is damaged: say what recovery drops, ask, drop it, then serve")
@click.option("--yes", is_flag=True, help="with --recover: do not ask")
def serve(tcp, serial_ports, pty, state, config, key_paths, insecure, runtime, heap, bundle,
          recover, yes):
    """Run the agent on this machine."""
    from dmagent.host_tools.runtime import serve as serving

    try:
        if recover:
            serving.recover_state(state, config, None if yes else lambda: click.confirm(
                "Drop them?", default=False, err=True), lambda line: click.echo(line, err=True))
            if not (tcp or serial_ports or pty):
                return  # recovered only: serving is another command
        if bundle and runtime != "micropython":
            raise serving.ServeError("--bundle needs --runtime micropython (a bundle is .mpy files)")
        if runtime != "cpython":
            sys.exit(serving.serve_micropython(tcp, serial_ports, pty, state, config, insecure, heap,
                                               key_paths, bundle, runtime))
        serving.serve_cpython(tcp, serial_ports, pty, state, config, insecure, key_paths)
    except serving.ServeError as exc:
        err_console.print("[red]error:[/] %s" % exc)
        sys.exit(EXIT_USAGE)


# --- MicroPython --------------------------------------------------------------------
@main.group()
def mpy():
    """The MicroPython device runtime (32-bit, capped heap)."""


@mpy.command(name="run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--heap", default="110k", show_default=True, help="heap size, as for micropython -X heapsize")
@click.option("--source", is_flag=True, help="import agent/ from its .py files, not the .mpy build")
@click.option("--runtime", type=click.Choice(["micropython", "micropython-frozen"]), default="micropython",
              show_default=True, help="micropython-frozen: the Unix port with the agent frozen in")
@click.argument("args", nargs=-1)
def mpy_run(file, heap, source, runtime, args):
    """Run FILE under the device runtime with agent/ importable (as .mpy, like a board)."""
    from dmagent.host_tools.runtime import micropython as mpy_runtime

    if source and runtime != "micropython":
        err_console.print("[red]error:[/] --source needs --runtime micropython (the frozen agent is in the firmware)")
        sys.exit(EXIT_USAGE)
    try:
        proc = mpy_runtime.run_file(file, heap=heap, args=args, compiled=not source, runtime=runtime)
    except mpy_runtime.RuntimeMissing as exc:
        err_console.print("[red]error:[/] %s" % exc)
        sys.exit(EXIT_USAGE)
    sys.exit(proc.returncode)


# --- keys and boards: build, flash, ports, vboard (each command lives with its library) --
def _register_board_commands():
    from dmagent.host_tools.cli.build import build_command
    from dmagent.host_tools.flash.deploy import flash_command
    from dmagent.host_tools.client.ports import ports_command
    from dmagent.host_tools.vboard.board import vboard_command

    from dmagent.host_tools.cli.keys import keys_group

    for command in (build_command, flash_command, ports_command, vboard_command, keys_group):
        if command is not None:
            main.add_command(command)


_register_board_commands()
from dmagent.host_tools.cli.conformance import test_command  # noqa: E402
from dmagent.host_tools.cli.sniff import proxy_command, sniff_command  # noqa: E402
from dmagent.host_tools.cli.ddf import ddf_group  # noqa: E402
main.add_command(ddf_group)
main.add_command(test_command)
main.add_command(sniff_command)
main.add_command(proxy_command)


if __name__ == "__main__":
    main()
