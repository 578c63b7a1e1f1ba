"""`Device`: every op of the protocol as a method, over any transport, with safe retries.

A retry resends the same request (same client token, same request id), so the agent
answers from its reply records instead of executing twice: after a timeout on the same
link, and after a lost connection on a new one, in a new session (docs/protocol.md s.3).
The token is random per Device; pass token= to go on where another Device left off.
"""

import random
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from dmagent.agent import proto as P
from dmagent.host_tools.client import wire
from dmagent.host_tools.client.errors import DmagentError, UsageError
from dmagent.host_tools.client.transport import LinkError, open_url

__all__ = ["Device", "DeviceError", "DeviceTimeout", "DmagentError", "LinkError", "UsageError", "status_text"]


def status_text(status):
    return P.STATUS_TEXT.get(status, "unknown status")


class DeviceError(DmagentError):
    """The device answered with a non-2xx status."""

    def __init__(self, status, message="", response=None):
        self.status = status
        self.message = message or ""
        self.response = response or {}
        text = "%d %s" % (status, status_text(status))
        if self.message:
            text += ": " + self.message
        Exception.__init__(self, text)


class DeviceTimeout(LinkError):
    """No answer after every retry."""


KeyArg = Union[bytes, str, None]  # key bytes, or a key file's path


class Device:
    """One device, over one transport; every op of the protocol as a method. A with-block
    closes it. Raises DmagentError kinds only: DeviceError, LinkError, UsageError."""

    def __init__(self, transport, timeout: float = 2.0, retries: int = 2, token: Optional[bytes] = None) -> None:
        self.url: Optional[str] = None  # set by open()
        self.transport = transport
        self.token = random.getrandbits(30) if token is None else token  # scopes our request ids
        self.reconnects = 0  # connections made again after one was lost
        self._reopen = None  # () -> a new transport to the same device, when known (open())
        self._credentials = None  # (principal, key, suites): to handshake again after reconnecting
        self.channel = None  # host_tools.client.secure.ClientChannel once handshaken
        self.for_server = None  # proxy mode: the ServerID every request acts for
        self.timeout = timeout
        self.retries = retries
        self.reader = wire.FrameReader()
        self._next_id = random.getrandbits(30)
        self.last_request_bytes = 0
        self.last_response_bytes = 0
        self.server_info = None
        self.max_frame = P.MAX_FRAME  # the device's, once hello or info said it
        self.handshake_bytes = self._hs_bytes = 0
        self.rejected = 0  # protected frames refused by the channel (forged, replayed, stale)
        self.requests_sent = 0  # requests made (a retry of one is not another)
        self.retries_sent = 0  # tries sent again after a timeout
        # Ask for every reply in pieces of at most this many body bytes, each retried on its
        # own (a noisy line loses long frames far more often than short ones); None: whole.
        self.reply_chunk = None

    @classmethod
    def open(cls, url: str, timeout: float = 2.0, retries: int = 2, principal: Optional[str] = None,
             key: KeyArg = None, for_server: Optional[str] = None, suites=(P.SUITE_CCM,),
             token: Optional[bytes] = None, key_store: bool = True) -> "Device":
        """Connect to url (tcp://, serial://, /dev/tty..., fd://); see over(). With principal and
        no key, the principal's key is taken from the user's key store, as `--as` does
        (key_store=False: name the principal in hello instead, for --insecure agents).
        A connection lost mid-request is made again to url, and the request retried there.
        A device that refuses the connection as busy (420, its links are all taken) is tried
        again, up to `retries` more times, a little later each time."""
        if key is None and principal is not None and key_store:
            from dmagent.host_tools.client.keys import find_key

            key = find_key(principal)
            key = str(key) if key is not None else None
        for attempt in range(retries + 1):
            try:
                dev = cls.over(open_url(url), timeout, retries, principal, key, for_server, suites,
                               token, reopen=lambda: open_url(url))
                dev.url = url
                return dev
            except DeviceError as exc:
                if exc.status != P.S_DEVICE_FULL or "busy" not in exc.message or attempt == retries:
                    raise
            time.sleep(0.5 * (attempt + 1) + random.random() * 0.5)

    @classmethod
    def over(cls, transport, timeout: float = 2.0, retries: int = 2, principal: Optional[str] = None,
             key: KeyArg = None, for_server: Optional[str] = None, suites=(P.SUITE_CCM,),
             token: Optional[bytes] = None, reopen=None) -> "Device":
        """A Device on an open transport (closed again if this fails).

        key: the long-term key (bytes, with principal) or a key file's path (its principal
        is used; a different principal given here is an error). With a key the client
        handshakes at once (docs/protocol.md 7.2) and seals every request; without one, a
        principal is named in hello, which only --insecure agents accept.
        for_server: put this ServerID in every request's `for` field (a gateway in proxy
        mode, docs/protocol.md 7.5); it needs a key.
        """
        dev = cls(transport, timeout, retries, token)
        dev._reopen = reopen
        try:
            if key is not None and not isinstance(key, (bytes, bytearray)):
                from dmagent.host_tools.client.keys import load_key_file

                file_principal, key = load_key_file(key)
                if principal is not None and principal != file_principal:
                    raise UsageError("the key file is for %s, not %s" % (file_principal, principal),
                                     "give --as %s, or the key file of %s" % (file_principal, principal))
                principal = file_principal
            if key is not None:
                if principal is None:
                    raise UsageError("a key needs its principal")
                dev.for_server = for_server
                dev._credentials = (principal, key, suites)
                dev.handshake(principal, key, suites)
            elif for_server is not None:
                raise UsageError("for_server needs a key: only an authenticated gateway acts for a server")
            elif principal is not None:
                dev.hello(principal)
        except BaseException:
            dev.close()
            raise
        return dev

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def principal(self) -> Optional[str]:
        """Who this session acts as: the handshaken principal, or the one named in hello."""
        if self.channel is not None:
            return self.channel.principal
        return (self.server_info or {}).get("principal")

    def __repr__(self) -> str:
        where = self.url or getattr(self.transport, "where", type(self.transport).__name__)
        who = self.principal
        mode = "sealed" if self.channel is not None else ("hello" if who else "anonymous")
        via = " for %s" % self.for_server if self.for_server else ""
        return "<Device %s as %s%s, %s>" % (where, who or "nobody", via, mode)

    # --- request/response -------------------------------------------------
    def peek_request_id(self) -> int:
        """The id the next request will carry."""
        return self._next_id

    def request(self, op: int, fields: Optional[Dict[int, Any]] = None, check: bool = True,
                request_id: Optional[int] = None) -> Dict[int, Any]:
        """Send one request, return the response map; raise DeviceError on non-2xx if check.
        request_id: send again a request made before (its answer was never seen)."""
        rid = request_id
        if rid is None:
            rid = self._next_id
            self._next_id = (self._next_id + 1) & 0x3FFFFFFF
        message = {P.K_ID: rid, P.K_OP: op, P.K_TOKEN: self.token}
        if self.for_server is not None:
            message[P.K_FOR] = self.for_server
        if fields:
            message.update(fields)
        if self.reply_chunk:
            message[P.K_CHUNK] = self.reply_chunk
            message[P.K_OFFSET] = 0
        self.requests_sent += 1
        response = self._exchange(message, rid)
        if response.get(P.K_STATUS) == P.S_PARTIAL and P.K_PART in response:
            response = self._gather(message, rid, response)
        status = response.get(P.K_STATUS)
        if check and not (isinstance(status, int) and 200 <= status < 300):
            raise DeviceError(status, response.get(P.K_MSG, ""), response)
        return response

    def _gather(self, message, rid, first):
        """The whole response from its pieces (docs/protocol.md, "Replies in pieces"): each
        piece is its own request, retried on its own, answered from the agent's reply cache."""
        total = first.get(P.K_TOTAL)
        body = bytearray(first[P.K_PART])
        if not isinstance(total, int) or total > 16 * P.MAX_FRAME:
            raise LinkError("a first reply piece without a sane total length: %r" % (total,))
        # The pieces after the first: the agent answers them from its reply cache by id, so
        # the request is only the id and where (short frames are what a noisy line lets by).
        fetch = {P.K_ID: rid, P.K_CHUNK: message[P.K_CHUNK]}
        while len(body) < total:
            fetch[P.K_OFFSET] = len(body)
            piece = self._exchange(fetch, rid)
            part = piece.get(P.K_PART)
            if piece.get(P.K_STATUS) != P.S_PARTIAL or not isinstance(part, bytes) or not part:
                raise DeviceError(piece.get(P.K_STATUS), piece.get(P.K_MSG, "reply piece missing"), piece)
            body += part
        if len(body) != total:
            raise LinkError("the reply's pieces do not make the reply (%d bytes, not %d)" % (len(body), total))
        try:
            response = wire.decode_message(bytes(body))
        except Exception:  # noqa: BLE001 - a bad reassembly is a link problem
            raise LinkError("the reply's pieces do not decode") from None
        if not isinstance(response, dict):
            raise LinkError("the reply's pieces are not a response map")
        return response

    def _exchange(self, message, rid):
        """Send message (retrying) until its response comes; DeviceTimeout after every try."""
        pivs = []  # sealed: the Partial IV of every try; the answer may come under any
        offset = message.get(P.K_OFFSET)
        for attempt in range(self.retries + 1):
            self.retries_sent += attempt > 0
            try:
                # each try: the same message (sealed: a new seq); its size checked once
                self._send(message, rid, pivs, check_size=attempt == 0)
                response = self._await(rid, pivs, offset)
            except LinkError:
                if self._reopen is None or attempt == self.retries:
                    raise
                self._reconnect()  # a new connection and session; the same token and id
                pivs = []
                continue
            if response is not None:
                break
        else:
            raise DeviceTimeout("no answer from the device after %d tries (%.1fs each)"
                                % (self.retries + 1, self.timeout))
        if self.channel is not None:
            self.channel.forget(rid)
        return response

    def _reconnect(self):
        try:
            self.transport.close()
        except OSError:
            pass
        self.transport = self._reopen()
        self.reader = wire.FrameReader()
        self.reconnects += 1
        if self._credentials is not None:
            self.handshake(*self._credentials)

    def exchange(self, message, timeout=None):
        """Send this exact message (its own request id, any fields, sealed if the session is)
        once, no retry: -> the response map, or None if none came in timeout seconds. For
        tools that probe a device (the conformance suite); a client wants request()."""
        rid = message.get(P.K_ID) if isinstance(message, dict) else None
        pivs = []
        self._send(message, rid, pivs)
        saved, self.timeout = self.timeout, self.timeout if timeout is None else timeout
        try:
            response = self._await(rid, pivs)
        finally:
            self.timeout = saved
        if self.channel is not None:
            self.channel.forget(rid)
        return response

    def _send(self, message, rid, pivs, check_size=False):
        """Write message once: sealed under a new seq (its Partial IV added to pivs) or plain.
        check_size: refuse first a frame the device would drop unread (request() does)."""
        if self.channel is not None:
            kind, body, piv = self.channel.seal(wire.cbor2.dumps(message), rid)
            pivs.append(piv)
            data = wire.encode_frame(kind, body)
        else:
            data = wire.encode_message(message)
        if check_size:
            self._check_size(data)
        self.last_request_bytes = self._write_frame(data)

    def _check_size(self, data):
        """Refuse, before sending, a frame the device would drop unread (it waits for no answer)."""
        content = len(wire.cobs.decode(data[:-1]))
        if content > self.max_frame:
            raise UsageError("the request is %d bytes in its frame, the device takes at most %d (max_frame)"
                             % (content, self.max_frame), "send a smaller value")

    def _write_frame(self, frame):
        """Write one frame after a 0x00 (docs/protocol.md 2): whatever garbage the line put
        before it ends there, and does not cost this frame. Returns the bytes written."""
        data = b"\x00" + frame
        self.transport.write(data)
        return len(data)

    def handshake(self, principal, key, suites=(P.SUITE_CCM,)):
        """Prove both sides' keys and open a protected session (docs/protocol.md 7.2).
        DeviceError (a HandshakeError) with the status: 401 wrong key or unknown principal,
        403 policy or backoff, 400 malformed; DeviceTimeout if the device never answers."""
        from dmagent.host_tools.client.secure import ClientChannel, HandshakeError

        self.channel = None
        self.handshake_bytes = self._hs_bytes = 0
        for attempt in range(self.retries + 1):  # a lost frame: start again from HS1
            channel = ClientChannel(principal, key, suites)
            try:
                hs2 = self._handshake_step(channel.hs1())
                try:
                    hs3 = channel.on_hs2(hs2)
                except HandshakeError as exc:
                    if getattr(exc, "hs3", None) is not None:
                        # The device did not prove our key: end its pending handshake now
                        # (it answers 401) rather than hold one of its few slots for 10 s.
                        try:
                            self._handshake_step(exc.hs3)
                        except DeviceTimeout:
                            pass
                    raise
                channel.on_hs4(self._handshake_step(hs3))
                break
            except HandshakeError as exc:
                if attempt < self.retries and _try_again(exc):
                    time.sleep(min(2.0, 0.1 * 2 ** attempt) + random.random() * 0.2)  # doubling
                    continue
                exc.message = "handshake as %s: %s" % (principal, exc.message)
                exc.args = ("%d %s: %s" % (exc.status, status_text(exc.status), exc.message),)
                raise
            except DeviceTimeout:
                if attempt == self.retries:
                    raise
        self.channel = channel
        self.handshake_bytes = self._hs_bytes
        return channel

    def _handshake_step(self, body):
        data = wire.encode_frame(P.KIND_HANDSHAKE, body)
        self._hs_bytes += self._write_frame(data)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            chunk = self.transport.read(deadline - time.monotonic())
            for kind, reply in self.reader.feed(chunk or b""):
                if kind == P.KIND_HANDSHAKE:
                    self._hs_bytes += len(wire.encode_frame(kind, reply))
                    return reply
                if kind == P.KIND_PLAIN:  # the device refused the link (busy), before closing it
                    _raise_refusal(reply)
        raise DeviceTimeout("no handshake answer from the device in %.1fs" % self.timeout)

    def _await(self, rid, pivs=(), offset=None):
        if self.channel is not None:
            from dmagent.host_tools.client.secure import SecurityError
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            chunk = self.transport.read(left)
            if not chunk:
                continue
            for kind, body in self.reader.feed(chunk):
                size = len(wire.encode_frame(kind, body))
                if self.channel is not None:
                    try:
                        body = self.channel.open(kind, body, rid, pivs)
                    except SecurityError:  # forged, replayed, or for another request
                        self.rejected += 1
                        continue
                elif kind != P.KIND_PLAIN:
                    continue
                try:
                    response = wire.decode_message(body)
                except Exception:
                    continue
                if not isinstance(response, dict):
                    continue
                # Replies without an id answer a request the agent could not parse at all.
                if (offset is not None and response.get(P.K_STATUS) == P.S_PARTIAL
                        and response.get(P.K_OFFSET) != offset):
                    continue  # a late answer to an earlier piece of this reply
                if response.get(P.K_ID) in (rid, None):
                    self.last_response_bytes = size
                    return response

    # --- ops ----------------------------------------------------------------
    def hello(self, principal: Optional[str] = None) -> Dict[str, Any]:
        fields = {P.K_SERVER: principal} if principal is not None else None
        self.server_info = self.request(P.OP_HELLO, fields)[P.K_VALUE]
        self.max_frame = self.server_info.get("max_frame") or self.max_frame
        return self.server_info

    def info(self) -> Dict[str, Any]:
        value = self.request(P.OP_INFO)[P.K_VALUE]
        self.max_frame = value.get("max_frame") or self.max_frame
        return value

    def get(self, uri: str, prop: Optional[str] = None) -> Any:
        """The value of a leaf, the child names of an interior node, or a property."""
        return self.get_with_format(uri, prop)[0]

    def get_with_format(self, uri: str, prop: Optional[str] = None) -> Tuple[Any, Optional[str]]:
        resp = self.request(P.OP_GET, {P.K_URI: _with_prop(uri, prop)})
        return resp.get(P.K_VALUE), resp.get(P.K_FORMAT)

    def add(self, uri: str, value: Any = None, fmt: Optional[str] = None, mime: Optional[str] = None,
            interior: bool = False) -> None:
        fields = {P.K_URI: uri}
        if interior:
            fmt = "node"
        if value is not None:
            fields[P.K_VALUE] = value
        if fmt is not None:
            fields[P.K_FORMAT] = fmt
        if mime is not None:
            fields[P.K_TYPE] = mime
        self.request(P.OP_ADD, fields)

    def replace(self, uri: str, value: Any, fmt: Optional[str] = None, prop: Optional[str] = None) -> None:
        fields = {P.K_URI: _with_prop(uri, prop), P.K_VALUE: value}
        if fmt is not None:
            fields[P.K_FORMAT] = fmt
        self.request(P.OP_REPLACE, fields)

    def delete(self, uri: str) -> None:
        self.request(P.OP_DELETE, {P.K_URI: uri})

    def exec(self, uri: str, data: Any = None) -> Tuple[int, Any]:
        """Returns (status, result): 200 done or 202 started."""
        fields = {P.K_URI: uri}
        if data is not None:
            fields[P.K_VALUE] = data
        resp = self.request(P.OP_EXEC, fields)
        return resp[P.K_STATUS], resp.get(P.K_VALUE)

    def acl(self, uri: str) -> Tuple[str, str, str]:
        """(own ACL, effective ACL, URI of the node the effective ACL comes from)."""
        resp = self.request(P.OP_ACL, {P.K_URI: uri})
        return resp[P.K_ACL], resp[P.K_EFFECTIVE], resp[P.K_FROM]

    def set_acl(self, uri: str, acl: str) -> None:
        self.replace(uri, acl, prop="ACL")

    def check(self, uri: str, server: str, cmd: str) -> Tuple[bool, str]:
        """(allowed, URI of the node whose ACL decided)."""
        resp = self.request(P.OP_CHECK, {P.K_URI: uri, P.K_SERVER: server, P.K_CMD: cmd})
        return resp[P.K_ALLOWED], resp[P.K_FROM]

    def list(self, uri: str, data: bool = False, page: int = 50) -> Iterator[Any]:
        """Every node at and below uri the requester may Get, page by page (a generator).

        Yields URIs, or (uri, value) pairs with data=True (the wire's [uri, value, format]
        entries, docs/protocol.md 4, less the format).
        """
        query = uri + ("?list=StructData" if data else "?list=Struct")
        cursor = None
        while True:
            fields = {P.K_URI: query, P.K_LIMIT: page}
            if cursor is not None:
                fields[P.K_CURSOR] = cursor
            resp = self.request(P.OP_GET, fields)
            for entry in resp.get(P.K_VALUE) or []:
                yield tuple(entry[:2]) if data else entry
            cursor = resp.get(P.K_NEXT)
            if cursor is None:
                return

    def atomic(self, items: List[Tuple[int, Dict[int, Any]]]) -> List[Dict[int, Any]]:
        """items: [(op, fields), ...] -> list of per-item response maps; raises DeviceError (507) on failure."""
        payload = []
        for op, fields in items:
            item = {P.K_OP: op}
            item.update(fields)
            payload.append(item)
        return self.request(P.OP_ATOMIC, {P.K_ITEMS: payload})[P.K_ITEMS]


def _raise_refusal(body):
    try:
        message = wire.decode_message(body)
    except Exception:
        return
    if isinstance(message, dict) and P.K_ID not in message and isinstance(message.get(P.K_STATUS), int):
        raise DeviceError(message[P.K_STATUS], message.get(P.K_MSG, ""), message)


def _try_again(exc):
    """A refusal worth one more try: the device was busy (its pending handshakes, or a source
    backing off: it does not say which) or short of heap, or our pending handshake was
    pushed out."""
    text = exc.message or ""
    return ((exc.status == P.S_FORBIDDEN and "busy" in text) or exc.status == P.S_DEVICE_FULL
            or (exc.status == P.S_BAD_REQUEST and "no handshake in progress" in text))


def _with_prop(uri, prop):
    return uri if prop is None else "%s?prop=%s" % (uri, prop)
