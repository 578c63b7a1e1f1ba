"""One link's session: who is speaking (the principal) and the cache of recent replies.

A request whose id is in the reply cache is answered from it and NOT executed again: that
is what makes a client's retry after a lost response safe. Until the security layer is
used, a principal can only be named in hello when the agent runs in --insecure mode.
"""

from agent import cbor
from agent import frame
from agent import proto as P
from agent.errors import DMError


class ReplyCache:
    """The last few encoded replies by request id, bounded in count and in bytes."""

    def __init__(self, max_entries=8, max_bytes=4096):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._ids = []  # oldest first
        self._replies = {}
        self._bytes = 0

    def get(self, rid):
        return self._replies.get(rid)

    def put(self, rid, reply):
        if rid in self._replies or len(reply) > self.max_bytes:
            return
        self._ids.append(rid)
        self._replies[rid] = reply
        self._bytes += len(reply)
        while len(self._ids) > self.max_entries or self._bytes > self.max_bytes:
            old = self._ids.pop(0)
            self._bytes -= len(self._replies.pop(old))


class Session:
    def __init__(self, dispatcher, link_name, insecure=False, log=None):
        self.dispatcher = dispatcher
        self.link_name = link_name
        self.insecure = insecure
        self.principal = None
        self.replies = ReplyCache()
        self.executed = 0  # requests actually run (not answered from the cache)
        self._log = log

    def hello(self, server):
        """Start a new session on this link; naming a principal needs --insecure mode."""
        self.principal = None
        self.replies = ReplyCache()  # a new client may reuse ids the last one used
        if server is None:
            return
        if not isinstance(server, str) or not server:
            raise DMError(P.S_BAD_REQUEST, "principal must be a non-empty text")
        if not self.insecure:
            raise DMError(P.S_UNAUTHORIZED, "naming a principal in hello needs the agent's --insecure mode")
        self.principal = server
        if self._log:
            self._log("%s: principal %s (insecure hello)" % (self.link_name, server))

    def on_frame(self, kind, body):
        """One received frame in, the encoded reply frame out (bytes), or None."""
        if kind != P.KIND_PLAIN:
            return self._reply_frame({P.K_STATUS: P.S_BAD_REQUEST, P.K_MSG: "unsupported frame kind %d" % kind})
        try:
            request = cbor.loads(body, P.MAX_DEPTH)
        except ValueError as exc:
            return self._reply_frame({P.K_STATUS: P.S_BAD_REQUEST, P.K_MSG: "bad CBOR: %s" % exc})
        rid = request.get(P.K_ID) if isinstance(request, dict) else None
        if rid is not None:
            if not isinstance(rid, int) or isinstance(rid, bool) or rid < 0:
                return self._reply_frame({P.K_STATUS: P.S_BAD_REQUEST, P.K_MSG: "request id must be an unsigned integer"})
            cached = self.replies.get(rid)
            if cached is not None:
                return cached
        self.executed += 1
        reply = self._reply_frame(self.dispatcher.handle(self, request))
        if rid is not None:
            self.replies.put(rid, reply)
        return reply

    def _reply_frame(self, response):
        body = cbor.dumps(response)
        if len(body) + 5 > P.MAX_FRAME:
            # Never send what the peer may not accept: say so, and how to get it.
            body = cbor.dumps({P.K_ID: response.get(P.K_ID), P.K_STATUS: P.S_TOO_LARGE,
                               P.K_MSG: "response exceeds the frame bound; use ?list= paging"})
        return frame.encode_frame(P.KIND_PLAIN, body)
