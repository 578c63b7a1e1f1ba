"""`dmagent sniff FILE|PORT` and `dmagent proxy --listen HOST:PORT --to URL`: frames decoded
for people (or as JSON lines), over host_tools.sniff. A mistake is one line, exit 2.
"""

import json
import sys
import time

import click
from rich.console import Console

from dmagent.host_tools.client.keys import KeyFileError, load_key_file

ARROW = {"out": "gw -> dev", "in": "dev -> gw", None: "   ?    "}


def _keys(paths):
    keys = {}
    for path in paths:
        try:
            principal, key = load_key_file(path)
        except (KeyFileError, ValueError, OSError) as exc:
            raise click.UsageError(str(exc)) from None
        keys[principal] = key
    return keys


def _printer(as_json):
    console = Console(highlight=False)

    def show(event):
        if as_json:
            click.echo(json.dumps(event.as_dict()))
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(event.ts)) + ".%03d" % int(event.ts % 1 * 1000)
        style = "red" if event.error else ("cyan" if event.direction == "out" else "green")
        console.print("[dim]%s[/] [%s]%s[/] %s" % (stamp, style, ARROW.get(event.direction), event.summary),
                      markup=True)
        if event.diagnostic:
            console.print("    " + event.diagnostic, markup=False)

    return show


@click.command("sniff")
@click.argument("source", metavar="FILE|PORT")
@click.option("--key", "key_files", multiple=True, metavar="FILE", help="open sealed bodies of this principal")
@click.option("--json", "as_json", is_flag=True, help="one JSON object a frame")
def sniff_command(source, key_files, as_json):
    """Decode frames: from a pcapng capture, a file of raw bytes, or live from a serial port."""
    from dmagent.host_tools.sniff import Sniffer
    from dmagent.host_tools.sniff.capture import is_capture, read_capture

    sniffer = Sniffer(_keys(key_files))
    show = _printer(as_json)
    try:
        if source.startswith(("/dev/", "serial://", "tcp://")) or source.upper().startswith("COM"):
            from dmagent.host_tools.client.transport import open_url

            with open_url(source) as link:
                while True:
                    for event in sniffer.feed(None, link.read(1.0)):
                        show(event)
        if is_capture(source):
            for ts, direction, data in read_capture(source):
                for event in sniffer.feed(direction, data, ts):
                    show(event)
        else:
            with open(source, "rb") as f:
                for event in sniffer.feed(None, f.read()):
                    show(event)
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError) as exc:
        Console(stderr=True).print("[red]error:[/] %s" % exc)
        sys.exit(2)


@click.command("proxy")
@click.option("--listen", required=True, metavar="HOST:PORT", help="where the gateway connects")
@click.option("--to", "to", required=True, metavar="URL", help="the device: tcp://, serial://, /dev/tty..")
@click.option("--save", type=click.Path(dir_okay=False), help="write a pcapng capture here")
@click.option("--key", "key_files", multiple=True, metavar="FILE", help="open sealed bodies of this principal")
@click.option("--json", "as_json", is_flag=True, help="one JSON object a frame")
def proxy_command(listen, to, save, key_files, as_json):
    """Relay between a gateway and a device, printing both directions decoded."""
    from dmagent.host_tools.sniff.capture import CaptureWriter
    from dmagent.host_tools.sniff.proxy import Proxy

    keys = _keys(key_files)
    try:
        capture = CaptureWriter(save) if save else None
        proxy = Proxy(listen, to, _printer(as_json), capture, keys)
    except (OSError, ValueError) as exc:
        Console(stderr=True).print("[red]error:[/] %s" % exc)
        sys.exit(2)
    print("relaying tcp://127.0.0.1:%d -> %s" % (proxy.port, to), flush=True)
    try:
        proxy.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.close()
        if capture is not None:
            capture.close()
