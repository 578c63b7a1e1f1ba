"""One link's session (App.new_link): frames in, replies out, who is speaking, the security
channel; and the replies a retry gets.

A request whose reply is kept is answered from it and NOT executed again: that is what
makes a client's retry after a lost response safe (a sealed retry comes under a new seq and
gets the kept answer sealed afresh, bound to the retry). Replies are kept by who spoke
(frame kind, principal, `for`) and request id: a write's with the client token (field 20)
device-wide, journaled with the write, so a retry on a new link, in a new session or after
a reboot is answered too; the rest in the link's own Replies.

Who a request speaks for: over a sealed or signed frame, the principal the handshake
proved, or the ServerID of field `for` when device config lets that gateway act for it;
over a plain frame, nobody, except the principal named in hello in --insecure mode.
"""

import gc

from . import cbor
from . import frame
from . import proto as P
from .errors import DMError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_PROTECTED = (P.KIND_SEALED, P.KIND_SIGNED)
# The window of write replies (docs/protocol.md s.3): per scope (frame kind, principal, `for`)
_PER_SCOPE = const(16)  # the newest replies kept
_SCOPES = const(4)  # scopes kept; the least recently used goes first
_SCOPE_BYTES = const(1024)  # reply bytes kept per scope
# Room a reply body leaves in the frame: CRC, and what sealing adds (seq and tag; the
# HMAC suite's tag is as long). Before their first use: a const() is folded only there.
_ROOM = const(4 + P.SEQ_LEN + P.TAG_LEN)  # (a board's copy has proto's values folded in)
_BODY_AT = const(1 + P.SEQ_LEN)  # a sealed reply's plaintext starts after kind and seq
_SMALL = const(256)  # a read's reply up to this size is kept


class Replies:
    """Reply bodies by (scope, client token, request id): the newest per_scope of each scope
    (at most scope_bytes of them) while at most `scopes` scopes are kept; the oldest go
    first. The device's one holds write replies, as the journal records that keep each with
    its write (and every snapshot keeps them all), so they outlive links, sessions and
    reboots. A link's own holds the rest."""

    def __init__(self, per_scope=_PER_SCOPE, scopes=_SCOPES, scope_bytes=_SCOPE_BYTES):
        self.per_scope = per_scope
        self.scopes = scopes
        self.scope_bytes = scope_bytes
        self.records = []  # ("rep", scope, token, rid, body), oldest first (the snapshot's)

    def get(self, scope, token, rid):
        for r in self.records:
            if r[3] == rid and r[2] == token and r[1] == scope:
                return r[4]
        return None

    def put(self, scope, token, rid, body):
        records = self.records
        if len(body) > self.scope_bytes or self.get(scope, token, rid) is not None:
            return
        for r in records:  # one copy of the scope's text for all its records
            if r[1] == scope:
                scope = r[1]
                break  # pragma: no mutate (every record of the scope holds the same text: only saves time)
        records.append(("rep", scope, token, rid, body))  # a tuple: no separate item array
        while True:
            count = size = 0
            seen = []
            for r in records:
                if r[1] == scope:
                    count += 1
                    size += len(r[4])
                if r[1] not in seen:
                    seen.append(r[1])
            if count > self.per_scope or size > self.scope_bytes:
                drop = scope
            elif len(seen) > self.scopes:
                drop = records[0][1]
            else:
                return
            for r in records:  # the oldest of that scope
                if r[1] == drop:
                    records.remove(r)
                    break


class Session:
    def __init__(self, dispatcher, link_name, insecure=False, log=None, channel=None, replies=None):
        self.dispatcher = dispatcher
        self.link_name = link_name
        self.insecure = insecure
        self.channel = channel  # agent.secure.Channel, or None when the device has no keys
        self.named = None  # principal named in an insecure hello
        self.principal = None  # whom the request being run speaks for
        self.kind = P.KIND_PLAIN  # the frame kind of the request being run (policy: dispatch.py)
        self.replies = Replies(8, 2, 1024)  # this link's: reads, token-less writes
        self.durable = replies if replies is not None else Replies()  # the device's
        self.reply_key = None  # (scope, token, rid) of the write being run: its reply is kept
        self.executed = 0  # requests actually run (not answered from the cache)
        self.dropped = 0  # protected frames on a link that cannot open them
        self.starved = 0  # frames dropped unanswered for want of heap (the client retries)
        self.workspace = None  # MAX_FRAME bytes to build replies in (a link lends its receive buffer)
        self.decoder = None  # a link's agent.frame.FrameDecoder (App.new_link), for receive()
        self._log = log

    @property
    def authenticated(self):
        return self.named is not None or (self.channel is not None and self.channel.established)

    def hello(self, server):
        """Start afresh (a new client may reuse the ids the last one used); naming a principal
        needs --insecure mode. An unauthenticated hello touches no session's replies."""
        if not (self.channel is not None and self.channel.established):
            self.replies.records = []  # the link's own replies: plain ones (a session's stay)
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
        """One received frame in, the encoded reply frame out (a view of the shared out
        buffer), or None."""
        piv = known = None  # the request's Partial IV (once opened) and id (once checked)
        try:
            channel = self.channel
            if kind == P.KIND_HANDSHAKE:
                if channel is None:
                    reply = cbor.dumps([P.HS_ERR, P.S_NOT_SUPPORTED, "this device holds no keys"])
                else:
                    was = channel._send
                    reply = channel.handshake(bytes(body))
                    if channel._send is not was:  # a new session: this link's replies start afresh
                        self.replies.records = []
                        if self._log:
                            self._log("%s: session for %s" % (self.link_name, channel.principal))
                return self._frame(kind, None, None, self._workspace(), 0, reply)
            if kind in _PROTECTED:
                opened = channel.open(kind, body) if channel is not None else None
                if opened is None:  # bad tag, replay, no session: dropped unanswered, counted
                    if channel is None:
                        self.dropped += 1
                    return None
                body, piv = opened
            elif kind != P.KIND_PLAIN:
                return self._reply(P.KIND_PLAIN, None, None,
                                   {P.K_STATUS: P.S_BAD_REQUEST, P.K_MSG: "unsupported frame kind %d" % kind})
            try:  # a string the tree would refuse anyway is not made: its 413 needs no heap for it
                request = cbor.loads(body, P.MAX_DEPTH, self.dispatcher.tree.longest)
            except ValueError as exc:
                if len(exc.args) > 1:  # that string (agent.cbor): 413, with the id if it was read
                    head = exc.args[1]
                    rid = head.get(P.K_ID) if type(head) is dict else None
                    rid = rid if _uint30(rid) else None
                    return self._reply(kind, piv, rid, {P.K_ID: rid, P.K_STATUS: P.S_TOO_LARGE, P.K_MSG: exc.args[0]})
                return self._reply(kind, piv, None, {P.K_STATUS: P.S_BAD_REQUEST, P.K_MSG: "bad CBOR: %s" % exc})
            rid = token = None
            if isinstance(request, dict):
                rid = request.get(P.K_ID)
                token = request.get(P.K_TOKEN)
            if rid is not None and not _uint30(rid):
                return self._reply(kind, piv, None, {P.K_STATUS: P.S_BAD_REQUEST,
                                                     P.K_MSG: "request id must be an unsigned integer"})
            known = rid  # a 420 answers it from here on
            if token is not None and not _uint30(token):
                return self._reply(kind, piv, rid, {P.K_ID: rid, P.K_STATUS: P.S_BAD_REQUEST,
                                                    P.K_MSG: "client token must be an unsigned integer below 2^30"})
            # Whom this request speaks for; 403 where policy refuses it: nothing ran, nothing kept.
            speaker = channel.principal if kind in _PROTECTED else self.named
            server = request.get(P.K_FOR) if isinstance(request, dict) else None  # (a non-map: dispatch refuses it)
            if server is not None:
                if kind not in _PROTECTED or not channel.guard.may_act_for(speaker, server):
                    return self._reply(kind, piv, rid, {P.K_ID: rid, P.K_STATUS: P.S_FORBIDDEN,
                                                        P.K_MSG: "%s may not act for %r" % (speaker or "this link", server)})
                speaker = server
            scope = write = chunk = None
            if rid is not None:
                chunk = request.get(P.K_CHUNK)
                if chunk is not None:  # replies in pieces (docs/protocol.md 3)
                    from . import pieces

                    chunk = pieces.asked(request)
                    if chunk is None:
                        return self._reply(kind, piv, rid, pieces.refusal(rid))
                # who spoke: the frame kind, the (proved or named) principal, the `for` ServerID
                scope = "%d:%s>%s" % (kind if kind in _PROTECTED else P.KIND_PLAIN,
                                      (channel.principal if kind in _PROTECTED else self.named) or "", server or "")
                write = request.get(P.K_OP) in _WRITES
                if token is None or speaker is None:
                    token = write = None  # unscoped: this link's replies only
                cached = self.durable.get(scope, token, rid) if write else None
                if cached is None:
                    cached = self.replies.get(scope, None, rid)
                if cached is not None:
                    if chunk is not None:
                        return self._frame(kind, piv, rid, self._workspace(),
                                           0, pieces.piece(rid, cached, chunk))  # pragma: no mutate (n comes from the body)
                    return self._frame(kind, piv, rid, self._workspace(),
                                       0, cached)  # pragma: no mutate (with a body, _frame takes n from it)
            self.executed += 1
            self.principal = speaker
            self.reply_key = (scope, token, rid) if write else None
            try:
                self.kind = kind
                response = self.dispatcher.handle(self, request)
            except DMError as exc:
                response = {P.K_ID: rid, P.K_STATUS: exc.status, P.K_MSG: exc.msg}
            finally:
                self.principal = self.named
                self.reply_key = None
            keep = None
            if rid is not None:
                # A write must never run twice; a read's reply is kept if it is small and the heap
                # has room (running a read again is harmless).
                keep = 1 if request.get(P.K_OP) in _WRITES else 0  # pragma: no mutate (any true keep is a write's)
                if chunk is not None:  # the pieces after the first come from the kept body
                    body = self._reply(kind, piv, rid, response, keep, scope, token if write else None, True)
                    return self._frame(kind, piv, rid, self._workspace(),
                                       0, pieces.piece(rid, body, chunk))  # pragma: no mutate (n comes from the body)
            return self._reply(kind, piv, rid, response, keep, scope, token if write else None)
        except MemoryError:
            # Out of heap in the middle of a request: the tree is as it was (the dispatcher
            # rolled back). Say so, in the little the reply needs; the link lives on.
            gc.collect()
            self.starved += 1
            if self._log:
                self._log("%s: out of memory" % self.link_name)
            try:
                if kind == P.KIND_HANDSHAKE:
                    return self._frame(kind, None, None, self._workspace(), 0,
                                       cbor.dumps([P.HS_ERR, P.S_DEVICE_FULL, "device out of memory"]))
                if kind == P.KIND_PLAIN or piv is not None:  # (a sealed one: once opened)
                    return self._reply(kind, piv, known, {P.K_ID: known, P.K_STATUS: P.S_DEVICE_FULL,
                                                          P.K_MSG: "device out of memory"})
            except MemoryError:
                pass
            return None

    def _reply(self, kind, piv, rid, response, keep=None, scope=None, token=None, body_only=False):
        """The reply frame, built in the workspace and the shared out buffer (valid until the
        next reply). keep: 1 a write's reply (kept: device-wide if token), 0 a read's (kept
        only if small and the heap allows); a reply that cannot be kept is still sent.
        body_only: keep the body and return it, unframed (replies in pieces)."""
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
        if body_only or keep is not None and (keep or n <= _SMALL):
            try:
                body = bytes(memoryview(content)[at : at + n])
                if token is not None:
                    self.durable.put(scope, token, rid, body)  # a journaled one is there already
                else:
                    self.replies.put(scope, None, rid, body)
            except MemoryError:
                if body_only:
                    raise
                gc.collect()  # not kept: answered all the same
            if body_only:
                return body
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
            kind = self.channel.kind
        else:
            end = 1 + n
        content[0] = kind
        return frame.frame_into(content, end, frame.out_buffer())

    def receive(self, data, end=None):
        """A link's bytes in (see App.new_link): yield the reply frames to what data
        (data[:end]) completes. Each is a view of a shared buffer: write it out (or copy
        it) before taking the next."""
        for kind, body in self.decoder.feed(data, end):
            reply = self.on_frame(kind, body)
            if reply is not None:
                yield reply

    def close(self):
        """The link is gone: its pending handshake and session keys, its receive buffer."""
        if self.channel is not None:
            self.channel.close()
        if self.decoder is not None:
            self.decoder.close()

    def _workspace(self):
        # The link's receive buffer (free while a reply is built), else one of our own.
        if self.workspace is None:
            self.workspace = bytearray(P.MAX_FRAME)
        return self.workspace


_WRITES = (P.OP_ADD, P.OP_REPLACE, P.OP_DELETE, P.OP_EXEC, P.OP_ATOMIC, P.OP_SEQUENCE, P.OP_COPY)


def _uint30(value):
    return type(value) is int and 0 <= value <= 0x3FFFFFFF
