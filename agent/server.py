"""The asyncio loop that serves links: TCP clients, UARTs, ttys, stdio.

The same coroutine serves every stream on MicroPython and CPython; a link is only a
pair of streams. One link's garbage or hang-up never stops the others. TCP links are
bounded (LinkTable): per device, per peer address, silent ones closed; one slot is kept for
a principal. A connect past the bound is told so in a status frame, then closed.
"""

import asyncio
import gc
import sys

from . import proto as P

try:
    from time import ticks_diff, ticks_ms  # MicroPython: without loading agent.hal (no keys, no hal)
except ImportError:  # CPython: the same wrapping arithmetic
    from .hal import ticks_diff, ticks_ms

READ_CHUNK = 256
_READ_KEEP = 4
# Read buffers of closed links, and those agent.startup.reserve set aside while the heap was whole
read_spare = []

# MicroPython: its streams have readinto(), and copy what they cannot send at once; CPython's
# transports may keep a view until it is sent, so a reply (a view of a shared buffer) is copied
_READINTO = sys.implementation.name == "micropython"


class LinkTable:
    """The TCP links up, and their bounds: config "links" (docs/protocol.md s.2), else the
    defaults here. The last slot is kept for a principal: a link that takes it while every
    other is unauthenticated must authenticate within 5 s."""

    def __init__(self, limits=None):
        get = (limits or {}).get
        self.max = get("max", 8)  # at once on the whole device (a board's heap may allow fewer)
        # ... from one peer address, which never takes every link
        self.per_source = min(get("per_source", 4), max(1, self.max - 1))
        self.idle_ms = get("idle_ms", 120000)  # an authenticated link silent this long: closed
        self.half_open_ms = get("half_open_ms", 15000)  # one not (yet) authenticated: closed
        self.up = []  # Links, each with .source, .task, .heard and .limit (unauthenticated)

    async def watch(self, log):
        """Close links silent past their timeout: one task for all, no timer per read."""
        while True:
            await asyncio.sleep(1)
            now = ticks_ms()
            for link in self.up:
                limit = self.idle_ms if link.authenticated else link.limit
                if ticks_diff(now, link.heard) > limit:
                    log("%s: silent too long, closed" % link.link_name)
                    link.heard = now  # cancelled once
                    link.task.cancel()


async def serve_stream(app, reader, writer, name, ordered=False, source=None, table=None):
    """ordered: the stream never reorders or repeats (TCP), so replay checks can be strict.
    source: the peer's address; table: the LinkTable bounding these links (TCP). A raw file
    (a tty agent.tty opened, stdio) is asyncio.StreamReader(f) as reader and writer both."""
    buf = None
    try:
        link = app.new_link(name, ordered, source)
        if _READINTO and hasattr(reader, "readinto"):  # MicroPython: no new bytes per read
            buf = read_spare.pop() if read_spare else bytearray(READ_CHUNK)
    except MemoryError:
        # This link is refused; the ones already up keep being served.
        app.log("link refused: %s: out of memory" % name)
        await refuse(writer, "busy: device out of memory")
        return
    if table is not None:
        link.limit = table.half_open_ms
        if app.guard is not None:
            unproven = 0
            for up in table.up:
                unproven += not up.authenticated
            if unproven >= table.max - 1:
                link.limit = min(link.limit, 5000)  # the slot kept for a principal (LinkTable)
        link.task = asyncio.current_task()
        link.heard = ticks_ms()
        table.up.append(link)
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
            link.heard = ticks_ms()
            try:
                sent = False
                for reply in link.receive(data, n):
                    writer.write(reply if _READINTO else bytes(reply))  # before the next reply reuses the buffer
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
        if table is not None:
            table.up.remove(link)
        dec = link.decoder
        link.close()
        link = None
        if buf is not None and len(read_spare) < _READ_KEEP:
            read_spare.append(buf)  # for the next link: a heap in small pieces may have none
        heap = ""
        if hasattr(gc, "mem_free"):  # MicroPython, where the heap is small and fixed
            gc.collect()
            heap = "; heap %d free" % gc.mem_free()
        app.log("link down: %s (frames %d, bad crc %d, bad cobs %d, oversized %d)%s"
                % (name, dec.frames, dec.bad_crc, dec.bad_cobs, dec.oversized, heap))
        await _close(writer)


async def _close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except Exception:
        pass


async def refuse(writer, msg):
    """Tell a peer it is refused (a plain frame, status 420), then close."""
    from . import cbor, frame

    try:
        writer.write(frame.encode_frame(P.KIND_PLAIN, cbor.dumps({P.K_STATUS: P.S_DEVICE_FULL, P.K_MSG: msg})))
        await writer.drain()
        await asyncio.sleep(0.1)
    except Exception:  # a reset, no heap: closed all the same
        pass
    await _close(writer)


async def serve_tcp(app, host, port, limits=None):
    """limits: config "links" (docs/protocol.md section 2)."""
    counter = [0]
    table = LinkTable(limits if limits is not None else app.link_limits)
    app.tcp_links = table
    asyncio.create_task(table.watch(app.log))

    async def on_client(reader, writer):
        counter[0] += 1
        peer = writer.get_extra_info("peername")
        # CPython gives (host, port); MicroPython a raw sockaddr: family(2) port(2, BE) IPv4(4)
        if isinstance(peer, (bytes, bytearray)) and len(peer) >= 8 and peer[0] == 2:
            peer = "%d.%d.%d.%d:%d" % (peer[4], peer[5], peer[6], peer[7], (peer[2] << 8) | peer[3])
        elif isinstance(peer, tuple) and len(peer) >= 2:
            peer = "%s:%s" % (peer[0], peer[1])
        else:
            peer = str(peer)
        source = peer.rsplit(":", 1)[0]  # the address: whom failures and link counts go against
        same = 0
        for up in table.up:
            same += up.source == source
        why = None
        if len(table.up) >= table.max:
            why = "busy: no link free"
        elif same >= table.per_source:
            why = "busy: too many links from this address"
        if why is not None:
            app.log("link refused: tcp %s: %s" % (peer, why))
            await refuse(writer, why)
            return
        await serve_stream(app, reader, writer, "tcp#%d %s" % (counter[0], peer), True, source, table)

    server = await asyncio.start_server(on_client, host, port)
    app.log("listening on tcp %s:%d" % (host, port))
    return server

