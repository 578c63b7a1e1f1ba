"""One link's session: who is speaking, the security channel, the cache of recent replies.

A request whose id is in the reply cache is answered from it and NOT executed again: that
is what makes a client's retry after a lost response safe (a sealed retry comes under a
new seq and gets the cached answer sealed afresh, bound to the retry).

Who a request speaks for: over a sealed or signed frame, the principal the handshake
proved, or the ServerID of field `for` when device config lets that gateway act for it;
over a plain frame, nobody, except the principal named in hello in --insecure mode.
"""

import gc

from . import cbor
from . import frame
from . import proto as P
from .errors import DMError

_PROTECTED = (P.KIND_SEALED, P.KIND_SIGNED)


class ReplyCache:
    """The last few response bodies by request id, bounded in count and in bytes."""

    def __init__(self, max_entries=8, max_bytes=P.MAX_FRAME):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._ids = []  # oldest first
        self._replies = {}  # rid -> (frame kind of the request, response body)
        self._bytes = 0

    def get(self, rid, kind):
        entry = self._replies.get(rid)
        if entry is not None and entry[0] == kind:  # never answer plain with a sealed reply
            return entry[1]
        return None

    def put(self, rid, kind, body):
        if rid in self._replies or len(body) > self.max_bytes:
            return
        self._ids.append(rid)
        self._replies[rid] = (kind, body)
        self._bytes += len(body)
        while len(self._ids) > self.max_entries or self._bytes > self.max_bytes:
            old = self._ids.pop(0)
            self._bytes -= len(self._replies.pop(old)[1])

    def clear(self):
        self._ids = []
        self._replies = {}
        self._bytes = 0


class Session:
    def __init__(self, dispatcher, link_name, insecure=False, log=None, channel=None):
        self.dispatcher = dispatcher
        self.link_name = link_name
        self.insecure = insecure
        self.channel = channel  # agent.secure.Channel, or None when the device has no keys
        self.named = None  # principal named in an insecure hello
        self.principal = None  # whom the request being run speaks for
        self.replies = ReplyCache()
        self.executed = 0  # requests actually run (not answered from the cache)
        self.dropped = 0  # protected frames on a link that cannot open them
        self.starved = 0  # frames dropped unanswered for want of heap (the client retries)
        self.workspace = None  # MAX_FRAME bytes to build replies in (Link lends its own)
        self._log = log

    def hello(self, server):
        """Start afresh on this link; naming a principal needs --insecure mode."""
        self.replies.clear()  # a new client may reuse ids the last one used
        if server is None:
            if self.named is not None and self.principal == self.named:
                self.principal = None
            self.named = None
            return
        if not isinstance(server, str) or not server:
            raise DMError(P.S_BAD_REQUEST, "principal must be a non-empty text")
        if not self.insecure:
            raise DMError(P.S_UNAUTHORIZED, "naming a principal in hello needs the agent's --insecure mode")
        self.named = self.principal = server
        if self._log:
            self._log("%s: principal %s (insecure hello)" % (self.link_name, server))

    def on_frame(self, kind, body):
        """One received frame in, the encoded reply frame out (bytes), or None."""
        try:
            return self._on_frame(kind, body)
        except MemoryError:
            # Out of heap in the middle of a request: no answer (the client retries); the
            # link and the agent live on.
            gc.collect()
            self.starved += 1
            if self._log:
                self._log("%s: out of memory, request dropped" % self.link_name)
            return None

    def _on_frame(self, kind, body):
        piv = None
        if kind == P.KIND_HANDSHAKE:
            return self._handshake(body)
        if kind in _PROTECTED:
            opened = self.channel.open(kind, body) if self.channel is not None else None
            if opened is None:  # bad tag, replay, no session: dropped unanswered, counted
                if self.channel is None:
                    self.dropped += 1
                return None
            body, piv = opened
        elif kind != P.KIND_PLAIN:
            return self._reply(P.KIND_PLAIN, None, None,
                               {P.K_STATUS: P.S_BAD_REQUEST, P.K_MSG: "unsupported frame kind %d" % kind})
        try:
            request = cbor.loads(body, P.MAX_DEPTH)
        except ValueError as exc:
            return self._reply(kind, piv, None, {P.K_STATUS: P.S_BAD_REQUEST, P.K_MSG: "bad CBOR: %s" % exc})
        rid = request.get(P.K_ID) if isinstance(request, dict) else None
        if rid is not None:
            if not isinstance(rid, int) or isinstance(rid, bool) or rid < 0:
                return self._reply(kind, piv, None, {P.K_STATUS: P.S_BAD_REQUEST,
                                                     P.K_MSG: "request id must be an unsigned integer"})
            cached = self.replies.get(rid, kind)
            if cached is not None:
                return self._frame(kind, piv, rid, self._workspace(), 0, cached)
        self.executed += 1
        try:
            self.principal = self._speaker(kind, request)
            response = self.dispatcher.handle(self, request)
        except DMError as exc:
            response = {P.K_ID: rid, P.K_STATUS: exc.status, P.K_MSG: exc.msg}
        finally:
            self.principal = self.named
        keep = None
        if rid is not None:
            # A write must never run twice; a read's reply is kept if it is small and the heap
            # has room (running a read again is harmless).
            keep = rid if request.get(P.K_OP) in _WRITES else -1 - rid
        return self._reply(kind, piv, rid, response, keep)

    def _speaker(self, kind, request):
        """Whom this request speaks for; DMError 403 where policy refuses it."""
        channel = self.channel
        guard = channel.guard if channel is not None else None
        acting = self.named
        if kind in _PROTECTED:
            acting = channel.principal
        if not isinstance(request, dict):
            return acting
        server = request.get(P.K_FOR)
        if server is not None:
            if kind not in _PROTECTED or not guard.may_act_for(acting, server):
                raise DMError(P.S_FORBIDDEN, "%s may not act for %r" % (acting or "this link", server))
            acting = server
        if guard is not None and guard.confidential and (kind != P.KIND_SEALED):
            for uri in _uris(request):
                if guard.needs_confidential(uri):
                    raise DMError(P.S_FORBIDDEN, "%s needs a confidential (AES-CCM) session" % uri)
        return acting

    def _handshake(self, body):
        channel = self.channel
        if channel is None:
            reply = cbor.dumps([P.HS_ERR, P.S_NOT_SUPPORTED, "this device holds no keys"])
        else:
            reply = channel.handshake(bytes(body))
            if channel.established:
                self.replies.clear()  # a new session: request ids start afresh
                if self._log:
                    self._log("%s: session for %s" % (self.link_name, channel.principal))
        return frame.encode_frame(P.KIND_HANDSHAKE, reply)

    def _reply(self, kind, piv, rid, response, keep=None):
        """The reply frame, built in the workspace and the shared out buffer (valid until the
        next reply). keep: the rid to cache the body under (negative: a read's, kept only
        if small and if the heap allows)."""
        content = self._workspace()
        at = _BODY_AT if kind in _PROTECTED else 1  # room for seq before a sealed body
        try:
            n = cbor.encode_into(response, content, at, len(content) - _ROOM) - at
        except cbor.CBOREncodeError:
            # Never send what the peer may not accept: say so, and how to get it.
            n = cbor.encode_into({P.K_ID: rid, P.K_STATUS: P.S_TOO_LARGE,
                                  P.K_MSG: "response exceeds the frame bound; use ?list= paging"},
                                 content, at) - at
            keep = None
        if keep is not None and keep >= 0:
            self.replies.put(rid, kind, bytes(memoryview(content)[at : at + n]))
        elif keep is not None and n <= _SMALL:
            try:
                self.replies.put(rid, kind, bytes(memoryview(content)[at : at + n]))
            except MemoryError:
                pass
        return self._frame(kind, piv, rid, content, n)

    def _frame(self, kind, piv, rid, content, n, body=None):
        """Frame the n-byte reply body in content (or body, copied in) under the request's
        kind, sealed in place if the request was."""
        at = _BODY_AT if kind in _PROTECTED else 1
        if body is not None:
            n = len(body)
            content[at : at + n] = body
        if kind in _PROTECTED:
            end = self.channel.seal_in_place(content, 1, n, piv, rid)
            kind = self.channel.kind()
        else:
            end = 1 + n
        content[0] = kind
        return frame.frame_into(content, end, frame.out_buffer())

    def _workspace(self):
        # The link's receive buffer (free while a reply is built), else one of our own.
        if self.workspace is None:
            self.workspace = bytearray(P.MAX_FRAME)
        return self.workspace

    def close(self):
        if self.channel is not None:
            self.channel.close()


# Room a reply body leaves in the frame: CRC, and what sealing adds (seq and tag; the
# HMAC suite's tag is as long).
_ROOM = 4 + P.SEQ_LEN + P.TAG_LEN
_BODY_AT = 1 + P.SEQ_LEN  # a sealed reply's plaintext starts after kind and seq
_SMALL = 256
_WRITES = (P.OP_ADD, P.OP_REPLACE, P.OP_DELETE, P.OP_EXEC, P.OP_ATOMIC, P.OP_SEQUENCE, P.OP_COPY)


def _uris(request):
    """Every URI a request touches: its target, a Copy's source, and its items' (nested)."""
    for key in (P.K_URI, P.K_SOURCE):
        uri = request.get(key)
        if uri is not None:
            yield uri
    items = request.get(P.K_ITEMS)
    if type(items) is list:
        for item in items:
            if type(item) is dict:
                for uri in _uris(item):
                    yield uri
