"""How a `dmagent` command reaches its device: the URL, principal, key and timeout from the
options, the environment and the user's defaults file (in that order); `-d auto`; `-v`; and
`device_command`, which opens the device, runs a verb and turns every failure into one line.
"""

import time

import click

from dmagent.agent import proto as P
from dmagent.host_tools.cli.common import device_options, env_default, err_console, fail_for, load_defaults, options
from dmagent.host_tools.client.device import Device, DmagentError, UsageError, status_text

DEFAULT_TIMEOUT = 2.0


def open_device(opts):
    """A Device from the options, the environment and the user's defaults file, in that order."""
    defaults = load_defaults()
    url = opts.device or env_default("DMAGENT_DEVICE") or defaults.get("device")
    # Who to be: what the command line says wins over the environment and the defaults file,
    # so a default never pairs with an explicit option it contradicts.
    if opts.key or opts.principal:
        principal, key_file = opts.principal, opts.key
    else:
        principal, key_file = defaults.get("as"), env_default("DMAGENT_KEY") or defaults.get("key")
    timeout = opts.timeout or defaults.get("timeout") or DEFAULT_TIMEOUT
    if not url:
        raise UsageError("no device given", "-d/--device URL (before or after the verb), DMAGENT_DEVICE, or \"device\" "
                         "in %s" % _config_name())
    if url == "auto":
        url = find_device(timeout)
    if not key_file and principal:  # --as with a key in the user's store: use it (Device.open would too)
        from dmagent.host_tools.client.keys import find_key

        key_file = find_key(principal)
    if key_file:  # read first: a bad file or one for another principal is refused before connecting
        from dmagent.host_tools.client.keys import load_key_file

        file_principal, key = load_key_file(key_file)
        if principal is not None and principal != file_principal:
            raise UsageError("the key file %s is for %s, not %s" % (key_file, file_principal, principal),
                             "give --as %s, or the key file of %s" % (file_principal, principal))
        dev = Device.open(url, timeout=timeout, principal=file_principal, key=key, for_server=opts.for_server)
    else:
        if opts.for_server:
            raise UsageError("--for needs --key: only an authenticated gateway acts for a server")
        dev = Device.open(url, timeout=timeout, principal=principal, key_store=False)
    if opts.verbose:
        _trace(dev)
    return dev


def _config_name():
    from dmagent.host_tools.cli.common import config_path

    return config_path()


def find_device(timeout):
    """`-d auto`: the one serial port where an agent answers `info`; several are listed. Only
    USB ports are asked (as `flash auto` does): a built-in UART may be wired to anything."""
    from dmagent.host_tools.client.ports import list_ports

    answering = []
    for port in list_ports():
        try:
            with Device.open(port.device, timeout=min(timeout, 0.5), retries=0) as dev:
                answering.append((port.device, dev.info().get("devid")))
        except DmagentError:
            continue
    if len(answering) == 1:
        return answering[0][0]
    if not answering:
        raise UsageError("-d auto: no agent answers on any serial port",
                         "`dmagent ports` lists them; give -d tcp://HOST:PORT for an agent on the network")
    raise UsageError("-d auto: several agents answer: %s" % ", ".join("%s (%s)" % a for a in answering),
                     "name one with -d PORT")


def _trace(dev):
    """-v: each request's op, status, size and time on stderr."""
    names = {v: k[3:].lower() for k, v in vars(P).items() if k.startswith("OP_") and isinstance(v, int)}
    plain = dev.request

    def request(op, fields=None, check=True):
        start = time.monotonic()
        status = "-"
        try:
            response = plain(op, fields, check=False)
            status = response.get(P.K_STATUS)
        finally:
            uri = (fields or {}).get(P.K_URI, "")
            err_console.print("[dim]%s %s %s %s: %d B out, %d B in, %.1f ms[/]" % (
                names.get(op, op), uri, status, status_text(status) if isinstance(status, int) else "no answer",
                dev.last_request_bytes, dev.last_response_bytes, (time.monotonic() - start) * 1000),
                markup=True, soft_wrap=True)
        if check and not (isinstance(status, int) and 200 <= status < 300):
            from dmagent.host_tools.client.device import DeviceError

            raise DeviceError(status, response.get(P.K_MSG, ""), response)
        return response

    dev.request = request


def device_command(fn):
    """The device options, then: open the device, run the verb, one line for any failure."""

    @device_options
    @click.pass_context
    def wrapper(click_ctx, *args, **kwargs):
        opts = options(click_ctx)
        try:
            if opts.session is not None:  # `dmagent shell`: one session for every command
                return fn(opts, opts.session, *args, **kwargs)
            with open_device(opts) as dev:
                return fn(opts, dev, *args, **kwargs)
        except DmagentError as exc:
            fail_for(exc)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper
