"""The `dmagent` command: a thin layer over host_tools' library.

Each verb parses its arguments, calls one library function and prints the result, for
people by default and as one JSON object with --json (cli/common.py: the shape, the device
options before or after the verb, one line and a hint for every mistake).
"""

import sys

import click
from rich.tree import Tree as RichTree

from dmagent.agent import proto as P
from dmagent.host_tools.cli.common import (EXIT_USAGE, DmagentGroup, console, device_options, emit_json,
                                           err_console, fail, options)
from dmagent.host_tools.cli.connect import device_command
from dmagent.host_tools.client.device import UsageError, status_text

# What an interior node's creator gets unless told otherwise: the spec recommends Delete, Get
# and Replace for the adding server; Add, which the agent gives the creator, stays, or the
# creator could not add the node's children.
CREATOR_RIGHTS = ("Add", "Delete", "Get", "Replace")


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
            import base64

            return base64.b64decode(text, validate=True)
        if fmt in ("null", "node"):
            return None
    except ValueError as exc:
        raise click.BadParameter("%r is not a valid %s value (%s)" % (text, fmt, exc)) from None
    return text


def text_readings(text):
    """The values a text may mean when no format is given, most specific first: a Replace tries
    them in turn, the leaf's own format refusing the others (415), so no Get is needed."""
    readings = []
    for fmt in ("int", "float"):
        try:
            readings.append(int(text, 10) if fmt == "int" else float(text))
        except ValueError:
            pass
    if text in ("true", "false"):
        readings.append(text == "true")
    readings.append(text)
    return readings


def show_value(value):
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if value is None:
        return "(null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@click.group(cls=DmagentGroup, context_settings={"help_option_names": ["-h", "--help"]})
@device_options
@click.version_option(package_name="dmagent")
def main():
    """Drive a dmagent device: read and change its OMA DM tree and ACLs.

    Device options (-d, --as, --key, --for, --json, --timeout, -v) go before or after the verb;
    defaults for -d, --as, --key and --timeout may sit in the user's config.json (dmagent config).
    """


# --- client verbs ------------------------------------------------------------------
@main.command()
@device_command
def info(ctx, dev):
    """Versions, limits and features of the agent."""
    data = dev.info()
    if ctx.json:
        emit_json(200, None, **{"value": data})
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
        emit_json(200, None, **{"value": value, "format": fmt})
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
@click.option("--acl", "new_acl", metavar="ACL",
              help="the new interior node's ACL [default: %s for the adding server]" % "/".join(CREATOR_RIGHTS))
@click.option("--no-acl", is_flag=True, help="leave the new interior node's ACL empty (it inherits)")
@device_command
def add(ctx, dev, uri, value, fmt, interior, new_acl, no_acl):
    """Add a leaf or an interior node (an interior node gets an ACL for its creator)."""
    if interior and value is not None:
        raise UsageError("an interior node has no value", "leave --value out, or --interior")
    if new_acl is not None and no_acl:
        raise UsageError("--acl and --no-acl contradict each other")
    fmt = "node" if interior else (fmt or ("chr" if value is not None else "node"))
    if fmt != "node" and (new_acl is not None or no_acl):
        raise UsageError("--acl and --no-acl are for interior nodes", "set a leaf's ACL with `dmagent acl URI --set`")
    dev.add(uri, None if value is None else parse_value(value, fmt), fmt)
    acl_set = None
    if fmt == "node" and not no_acl:
        acl_set = new_acl if new_acl is not None else creator_acl(dev, ctx)
        if acl_set:
            dev.set_acl(uri, acl_set)
    if ctx.json:
        emit_json(200, None, acl=acl_set)
    else:
        console.print("added %s%s" % (uri, " (ACL %s)" % acl_set if acl_set else ""))


def creator_acl(dev, ctx):
    """Add, Delete, Get and Replace for the server that added the node (the one the session is
    for: --for, else the principal; none for an anonymous --insecure session)."""
    who = ctx.for_server or (dev.channel.principal if dev.channel is not None else ctx.principal)
    if not who:
        return None
    return "&".join("%s=%s" % (cmd, who) for cmd in CREATOR_RIGHTS)


@main.command()
@click.argument("uri")
@click.option("--value", metavar="V", required=True, help="the new value")
@click.option("--format", "fmt", type=click.Choice(P.FORMATS), help="default: the leaf keeps its own")
@click.option("--prop", metavar="NAME", help="replace a property instead: ACL Name Title")
@device_command
def replace(ctx, dev, uri, value, fmt, prop):
    """Replace a leaf's value (or a property: ACL, Name, Title). Needs Replace, never Get."""
    if prop is not None or fmt is not None:
        dev.replace(uri, value if prop else parse_value(value, fmt), None if prop else fmt, prop=prop)
    else:
        replace_keeping_format(dev, uri, value)
    _ok(ctx, "replaced %s" % (uri if prop is None else "%s?prop=%s" % (uri, prop)))


def replace_keeping_format(dev, uri, text):
    """Replace without a format: the agent keeps the leaf's and refuses (415) a value of
    another type, so each reading of the text is offered in turn until one fits."""
    from dmagent.host_tools.client.device import DeviceError

    readings = text_readings(text)
    for i, value in enumerate(readings):
        try:
            return dev.replace(uri, value)
        except DeviceError as exc:
            if exc.status != P.S_BAD_FORMAT or i == len(readings) - 1:
                raise


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
        emit_json(status, None, value=result)
    else:
        console.print("%d %s%s" % (status, status_text(status), "" if result is None else ": %s" % show_value(result)))


@main.command()
@click.argument("uri")
@click.option("--set", "new_acl", metavar="ACL", help="replace the node's own ACL, e.g. 'Get=*&Replace=ServerA'")
@device_command
def acl(ctx, dev, uri, new_acl):
    """A node's own ACL, its effective ACL, and where that comes from."""
    if new_acl is not None:  # set only: reading it back would need Get, which setting does not
        dev.set_acl(uri, new_acl)
        if ctx.json:
            emit_json(200, None, acl=new_acl)
        else:
            console.print("%s: ACL set to %s" % (uri, new_acl or "(empty: inherits)"))
        return
    own, effective, source = dev.acl(uri)
    if ctx.json:
        emit_json(200, None, **{"acl": own, "effective": effective, "from": source})
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
        emit_json(200, None, **{"allowed": allowed, "from": source})
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
        emit_json(200, None, **{"value": [[u, v] for u, v in entries]})
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
        emit_json(200)
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
@click.option("-v", "--verbose", is_flag=True, help="log each request, with a timestamp (--runtime cpython)")
@click.pass_context
def serve(click_ctx, tcp, serial_ports, pty, state, config, key_paths, insecure, runtime, heap, bundle,
          recover, yes, verbose):
    """Run the agent on this machine."""
    from dmagent.host_tools.cli.common import check_device_config
    from dmagent.host_tools.runtime import serve as serving

    if config:
        check_device_config(config)
    stopped = ("the agent stopped; every change it acknowledged is kept in %s" % state if state
               else "the agent stopped; nothing persists without --state")
    options(click_ctx).state = stopped
    try:
        if recover:
            serving.recover_state(state, config, None if yes else lambda: click.confirm(
                "Drop them?", default=False, err=True), lambda line: click.echo(line, err=True))
            if not (tcp or serial_ports or pty):
                return  # recovered only: serving is another command
        if bundle and runtime != "micropython":
            raise serving.ServeError("--bundle needs --runtime micropython (a bundle is .mpy files)")
        if runtime != "cpython":
            if verbose:
                err_console.print("serve -v: the request log is --runtime cpython's; the MicroPython agent "
                                  "logs its links and sessions", markup=False)
            code = serving.serve_micropython(tcp, serial_ports, pty, state, config, insecure, heap,
                                             key_paths, bundle, runtime)
        else:
            code = serving.serve_cpython(tcp, serial_ports, pty, state, config, insecure, key_paths,
                                         verbose=verbose) or 0
    except serving.ServeError as exc:
        fail(str(exc))
    if code == 0:
        err_console.print("stopped: %s" % stopped, markup=False, soft_wrap=True)
    sys.exit(code)


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell's completion script: eval "$(dmagent completion bash)" in ~/.bashrc."""
    from click.shell_completion import get_completion_class

    click.echo(get_completion_class(shell)(main, {}, "dmagent", "_DMAGENT_COMPLETE").source())


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


# --- keys and boards: build, flash, ports, vboard (each command in its own module) --
def _register_board_commands():
    from dmagent.host_tools.cli.build import build_command
    from dmagent.host_tools.cli.flash import flash_command
    from dmagent.host_tools.cli.keys import keys_group
    from dmagent.host_tools.cli.ports import ports_command
    from dmagent.host_tools.cli.shell import shell_command
    from dmagent.host_tools.cli.vboard import vboard_command

    for command in (build_command, flash_command, ports_command, vboard_command, keys_group, shell_command):
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
