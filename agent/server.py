"""The asyncio loop that serves any number of links: TCP clients, UARTs, ttys, stdio.

The same coroutine serves every stream on MicroPython and CPython; a link is only a
pair of streams. One link's garbage or hang-up never stops the others.
"""

import asyncio
import gc
import sys

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


try:
    import termios
except ImportError:  # boards without termios use machine.UART instead
    termios = None

READ_CHUNK = 256
_READ_KEEP = 4
_read_spare = []  # read buffers of closed links, and those reserve_reads() set aside


def reserve_reads(count):
    """Set aside read buffers for count links now, while the heap is whole (see frame.reserve)."""
    while len(_read_spare) < count:
        _read_spare.append(bytearray(READ_CHUNK))

_READINTO = sys.implementation.name == "micropython"  # its streams have readinto()

if _READINTO:

    def _COPY(reply):  # its streams copy what they cannot send at once
        return reply

else:
    _COPY = bytes  # CPython's transports may keep the view until sent


async def serve_stream(app, reader, writer, name, ordered=False):
    """ordered: the stream never reorders or repeats (TCP), so replay checks can be strict."""
    buf = None
    try:
        link = app.new_link(name, ordered)
        if _READINTO and hasattr(reader, "readinto"):  # MicroPython: no new bytes per read
            buf = _read_spare.pop() if _read_spare else bytearray(READ_CHUNK)
    except MemoryError:
        # This link is refused; the ones already up keep being served.
        app.log("link refused: %s: out of memory" % name)
        await _close(writer)
        return
    app.log("link up: %s" % name)
    try:
        while True:
            if buf is not None:
                n = await reader.readinto(buf)
                data = buf
            else:
                data = await reader.read(READ_CHUNK)
                n = len(data)
            if not n:
                break
            try:
                sent = False
                for reply in link.receive(data, n):
                    writer.write(_COPY(reply))  # before the next reply reuses the buffer
                    sent = True
            except MemoryError:  # these bytes are lost (the peer retries); the link lives on
                gc.collect()
                app.log("%s: out of memory, input dropped" % name)
                continue
            if sent:
                await writer.drain()
    except (OSError, asyncio.CancelledError) as exc:
        app.log("link %s closed: %r" % (name, exc))
    finally:
        dec = link.decoder
        link.close()
        link = None
        if buf is not None and len(_read_spare) < _READ_KEEP:
            _read_spare.append(buf)  # for the next link: a heap in small pieces may have none
        app.log("link down: %s (frames %d, bad crc %d, bad cobs %d, oversized %d)%s"
                % (name, dec.frames, dec.bad_crc, dec.bad_cobs, dec.oversized, heap_text()))
        await _close(writer)


def heap_text():
    """'; heap N free' on MicroPython, where the heap is small and fixed; '' on CPython."""
    if not hasattr(gc, "mem_free"):
        return ""
    gc.collect()
    return "; heap %d free" % gc.mem_free()


async def _close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except Exception:
        pass


def _peer_text(peer):
    # CPython gives (host, port); MicroPython a raw sockaddr: family(2) port(2, BE) IPv4(4)
    if isinstance(peer, (bytes, bytearray)) and len(peer) >= 8 and peer[0] == 2:
        return "%d.%d.%d.%d:%d" % (peer[4], peer[5], peer[6], peer[7], (peer[2] << 8) | peer[3])
    if isinstance(peer, tuple) and len(peer) >= 2:
        return "%s:%s" % (peer[0], peer[1])
    return str(peer)


async def serve_tcp(app, host, port):
    counter = [0]

    async def on_client(reader, writer):
        counter[0] += 1
        peer = _peer_text(writer.get_extra_info("peername"))
        await serve_stream(app, reader, writer, "tcp#%d %s" % (counter[0], peer), True)

    server = await asyncio.start_server(on_client, host, port)
    app.log("listening on tcp %s:%d" % (host, port))
    return server


_VTIME = const(5)  # indices into the tty's control characters (Linux)
_VMIN = const(6)


def make_raw(fd, baud=None):
    """Raw mode, and reads that return what has arrived: the Unix port's file read(n)
    otherwise waits for all n bytes, and a 6-byte request would sit unanswered."""
    termios.setraw(fd)
    attrs = termios.tcgetattr(fd)
    speed = getattr(termios, "B%d" % baud, None) if baud else None
    if speed is not None:
        attrs[4] = speed
        attrs[5] = speed
    attrs[6][_VMIN] = 0  # with VTIME 0: read() takes what is there (asyncio polled first)
    attrs[6][_VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def open_tty(path, baud=115200):
    """Open a tty (a UART device or a pseudo-terminal) raw, for MicroPython's Unix port."""
    f = open(path, "r+b")
    make_raw(f.fileno(), baud)
    return f


async def serve_file(app, f, name):
    """Serve a raw file-like stream (tty, UART, stdio) that MicroPython's asyncio can poll."""
    stream = asyncio.StreamReader(f)
    await serve_stream(app, stream, stream, name)
