"""`Device`: every op of the protocol as a method, over any transport, with safe retries.

A retry resends the very same frame with the same request id, so the agent answers from
its reply cache instead of executing twice. Request ids start at a random point because
a serial link outlives one client process and its cache with it.
"""

import random

from dmagent.agent import proto as P
from dmagent.host_tools.client import wire
from dmagent.host_tools.client.transport import LinkError, open_url

__all__ = ["Device", "DeviceError", "DeviceTimeout", "LinkError", "status_text"]


def status_text(status):
    return P.STATUS_TEXT.get(status, "unknown status")


class DeviceError(Exception):
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


class Device:
    def __init__(self, transport, timeout=2.0, retries=2):
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
        self.handshake_bytes = self._hs_bytes = 0
        self.rejected = 0  # protected frames refused by the channel (forged, replayed, stale)
        self.requests_sent = 0  # requests made (a retry of one is not another)
        self.retries_sent = 0  # tries sent again after a timeout

    @classmethod
    def open(cls, url, timeout=2.0, retries=2, principal=None, key=None, for_server=None,
             suites=(P.SUITE_CCM,)):
        """Connect to url (tcp://, serial://, /dev/tty..., fd://); see over()."""
        return cls.over(open_url(url), timeout, retries, principal, key, for_server, suites)

    @classmethod
    def over(cls, transport, timeout=2.0, retries=2, principal=None, key=None, for_server=None,
             suites=(P.SUITE_CCM,)):
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
                    raise ValueError("the key file is for %s, not %s" % (file_principal, principal))
                principal = file_principal
            if key is not None:
                if principal is None:
                    raise ValueError("a key needs its principal")
                dev.for_server = for_server
                dev.handshake(principal, key, suites)
            elif for_server is not None:
                raise ValueError("for_server needs a key: only an authenticated gateway acts for a server")
            elif principal is not None:
                dev.hello(principal)
        except BaseException:
            dev.close()
            raise
        return dev

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- request/response -------------------------------------------------
    def request(self, op, fields=None, check=True):
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
            self._send(message, rid, pivs)  # each try: the same message (sealed: a new seq)
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

    def _send(self, message, rid, pivs):
        """Write message once: sealed under a new seq (its Partial IV added to pivs) or plain."""
        if self.channel is not None:
            kind, body, piv = self.channel.seal(wire.cbor2.dumps(message), rid)
            pivs.append(piv)
            data = wire.encode_frame(kind, body)
        else:
            data = wire.encode_message(message)
        self.last_request_bytes = len(data)
        self.transport.write(data)

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
    def hello(self, principal=None):
        fields = {P.K_SERVER: principal} if principal is not None else None
        self.server_info = self.request(P.OP_HELLO, fields)[P.K_VALUE]
        return self.server_info

    def info(self):
        return self.request(P.OP_INFO)[P.K_VALUE]

    def get(self, uri, prop=None):
        """The value of a leaf, the child names of an interior node, or a property."""
        return self.get_with_format(uri, prop)[0]

    def get_with_format(self, uri, prop=None):
        resp = self.request(P.OP_GET, {P.K_URI: _with_prop(uri, prop)})
        return resp.get(P.K_VALUE), resp.get(P.K_FORMAT)

    def add(self, uri, value=None, fmt=None, mime=None, interior=False):
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

    def replace(self, uri, value, fmt=None, prop=None):
        fields = {P.K_URI: _with_prop(uri, prop), P.K_VALUE: value}
        if fmt is not None:
            fields[P.K_FORMAT] = fmt
        self.request(P.OP_REPLACE, fields)

    def delete(self, uri):
        self.request(P.OP_DELETE, {P.K_URI: uri})

    def exec(self, uri, data=None):
        """Returns (status, result): 200 done or 202 started."""
        fields = {P.K_URI: uri}
        if data is not None:
            fields[P.K_VALUE] = data
        resp = self.request(P.OP_EXEC, fields)
        return resp[P.K_STATUS], resp.get(P.K_VALUE)

    def acl(self, uri):
        """(own ACL, effective ACL, URI of the node the effective ACL comes from)."""
        resp = self.request(P.OP_ACL, {P.K_URI: uri})
        return resp[P.K_ACL], resp[P.K_EFFECTIVE], resp[P.K_FROM]

    def set_acl(self, uri, acl):
        self.replace(uri, acl, prop="ACL")

    def check(self, uri, server, cmd):
        """(allowed, URI of the node whose ACL decided)."""
        resp = self.request(P.OP_CHECK, {P.K_URI: uri, P.K_SERVER: server, P.K_CMD: cmd})
        return resp[P.K_ALLOWED], resp[P.K_FROM]

    def list(self, uri, data=False, page=50):
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

    def atomic(self, items):
        """items: [(op, fields), ...] -> list of per-item response maps; raises DeviceError (507) on failure."""
        payload = []
        for op, fields in items:
            item = {P.K_OP: op}
            item.update(fields)
            payload.append(item)
        return self.request(P.OP_ATOMIC, {P.K_ITEMS: payload})[P.K_ITEMS]


def _with_prop(uri, prop):
    return uri if prop is None else "%s?prop=%s" % (uri, prop)
