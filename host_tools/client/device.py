"""`Device`: every op of the protocol as a method, over any transport, with safe retries.

A retry resends the very same frame with the same request id, so the agent answers from
its reply cache instead of executing twice. Request ids start at a random point because
a serial link outlives one client process and its cache with it.
"""

import random
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

    def __init__(self, transport, timeout: float = 2.0, retries: int = 2) -> None:
        self.url: Optional[str] = None  # set by open()
        self.transport = transport
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

    @classmethod
    def open(cls, url: str, timeout: float = 2.0, retries: int = 2, principal: Optional[str] = None,
             key: KeyArg = None, for_server: Optional[str] = None, suites=(P.SUITE_CCM,),
             key_store: bool = True) -> "Device":
        """Connect to url (tcp://, serial://, /dev/tty..., fd://); see over(). With principal and
        no key, the principal's key is taken from the user's key store, as `--as` does
        (key_store=False: name the principal in hello instead, for --insecure agents)."""
        if key is None and principal is not None and key_store:
            from dmagent.host_tools.client.keys import find_key

            key = find_key(principal)
            key = str(key) if key is not None else None
        dev = cls.over(open_url(url), timeout, retries, principal, key, for_server, suites)
        dev.url = url
        return dev

    @classmethod
    def over(cls, transport, timeout: float = 2.0, retries: int = 2, principal: Optional[str] = None,
             key: KeyArg = None, for_server: Optional[str] = None, suites=(P.SUITE_CCM,)) -> "Device":
        """A Device on an open transport (closed again if this fails).

        key: the long-term key (bytes, with principal) or a key file's path (its principal
        is used; a different principal given here is an error). With a key the client
        handshakes at once (docs/protocol.md 7.2) and seals every request; without one, a
        principal is named in hello, which only --insecure agents accept.
        for_server: put this ServerID in every request's `for` field (a gateway in proxy
        mode, docs/protocol.md 7.5); it needs a key.
        """
        dev = cls(transport, timeout, retries)
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
    def request(self, op: int, fields: Optional[Dict[int, Any]] = None, check: bool = True) -> Dict[int, Any]:
        """Send one request, return the response map; raise DeviceError on non-2xx if check."""
        rid = self._next_id
        self._next_id = (self._next_id + 1) & 0x3FFFFFFF
        message = {P.K_ID: rid, P.K_OP: op}
        if self.for_server is not None:
            message[P.K_FOR] = self.for_server
        if fields:
            message.update(fields)
        pivs = []  # sealed: the Partial IV of every try; the answer may come under any
        self.requests_sent += 1
        for attempt in range(self.retries + 1):
            self.retries_sent += attempt > 0
            if self.channel is not None:  # each try: the same message under a new seq
                kind, body, piv = self.channel.seal(wire.cbor2.dumps(message), rid)
                pivs.append(piv)
                data = wire.encode_frame(kind, body)
            else:
                data = wire.encode_message(message)
            self.last_request_bytes = len(data)
            if attempt == 0:
                self._check_size(data)
            self.transport.write(data)
            response = self._await(rid, pivs)
            if response is not None:
                break
        else:
            raise DeviceTimeout("no answer from the device after %d tries (%.1fs each)"
                                % (self.retries + 1, self.timeout))
        if self.channel is not None:
            self.channel.forget(rid)
        status = response.get(P.K_STATUS)
        if check and not (isinstance(status, int) and 200 <= status < 300):
            raise DeviceError(status, response.get(P.K_MSG, ""), response)
        return response

    def _check_size(self, data):
        """Refuse, before sending, a frame the device would drop unread (it waits for no answer)."""
        content = len(wire.cobs.decode(data[:-1]))
        if content > self.max_frame:
            raise UsageError("the request is %d bytes in its frame, the device takes at most %d (max_frame)"
                             % (content, self.max_frame), "send a smaller value")

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
        import time

        data = wire.encode_frame(P.KIND_HANDSHAKE, body)
        self._hs_bytes += len(data)
        self.transport.write(data)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            chunk = self.transport.read(deadline - time.monotonic())
            for kind, reply in self.reader.feed(chunk or b""):
                if kind == P.KIND_HANDSHAKE:
                    self._hs_bytes += len(wire.encode_frame(kind, reply))
                    return reply
        raise DeviceTimeout("no handshake answer from the device in %.1fs" % self.timeout)

    def _await(self, rid, pivs=()):
        import time

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

        Yields URIs, or (uri, value) pairs with data=True.
        """
        query = uri + ("?list=StructData" if data else "?list=Struct")
        cursor = None
        while True:
            fields = {P.K_URI: query, P.K_LIMIT: page}
            if cursor is not None:
                fields[P.K_CURSOR] = cursor
            resp = self.request(P.OP_GET, fields)
            for entry in resp.get(P.K_VALUE) or []:
                yield tuple(entry) if data else entry
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


def _with_prop(uri, prop):
    return uri if prop is None else "%s?prop=%s" % (uri, prop)
