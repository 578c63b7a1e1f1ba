"""The asyncio loop that serves any number of links: TCP clients, UARTs, ttys, stdio.

The same coroutine serves every stream on MicroPython and CPython; a link is only a
pair of streams. One link's garbage or hang-up never stops the others.
"""

import asyncio

try:
    import termios
except ImportError:  # boards without termios use machine.UART instead
    termios = None

READ_CHUNK = 256


async def serve_stream(app, reader, writer, name):
    link = app.new_link(name)
    app.log("link up: %s" % name)
    try:
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                break
            replies = link.receive(data)
            if replies:
                for reply in replies:
                    writer.write(reply)
                await writer.drain()
    except (OSError, asyncio.CancelledError) as exc:
        app.log("link %s closed: %r" % (name, exc))
    finally:
        dec = link.decoder
        app.log("link down: %s (frames %d, bad crc %d, bad cobs %d, oversized %d)"
                % (name, dec.frames, dec.bad_crc, dec.bad_cobs, dec.oversized))
        try:
            writer.close()
            await writer.wait_closed()
        except Exception:
            pass


async def serve_tcp(app, host, port):
    counter = [0]

    async def on_client(reader, writer):
        counter[0] += 1
        peer = writer.get_extra_info("peername")
        await serve_stream(app, reader, writer, "tcp#%d %s" % (counter[0], peer))

    server = await asyncio.start_server(on_client, host, port)
    app.log("listening on tcp %s:%d" % (host, port))
    return server


def open_tty(path, baud=115200):
    """Open a tty (a UART device or a pseudo-terminal) raw, for MicroPython's Unix port."""
    f = open(path, "r+b")
    fd = f.fileno()
    termios.setraw(fd)
    attrs = termios.tcgetattr(fd)
    speed = getattr(termios, "B%d" % baud, None)
    if speed is not None:
        attrs[4] = speed
        attrs[5] = speed
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return f


async def serve_file(app, f, name):
    """Serve a raw file-like stream (tty, UART, stdio) that MicroPython's asyncio can poll."""
    stream = asyncio.StreamReader(f)
    await serve_stream(app, stream, stream, name)
