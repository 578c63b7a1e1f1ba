"""A byte stream, one direction at a time, into frame events: what each frame is, and what it
says. It follows the handshake (both nonces travel in HS1 and HS2), so with the principal's
key it derives the session keys as the client does (host_tools.client.secure) and opens
sealed bodies; without the key a sealed body is shown as sealed, never guessed at.
"""

import time

import cbor2

from dmagent.agent import proto as P
from dmagent.host_tools.client import secure, wire
from dmagent.host_tools.sniff.diag import diag

KIND_NAMES = {P.KIND_PLAIN: "plain", P.KIND_HANDSHAKE: "handshake", P.KIND_SEALED: "sealed",
              P.KIND_SIGNED: "signed"}
HS_NAMES = {P.HS_ERR: "ERR", P.HS1: "HS1", P.HS2: "HS2", P.HS3: "HS3", P.HS4: "HS4"}
OUT, IN = "out", "in"  # to the device, from it


class Event:
    """One frame (or a stretch of bytes that was not one) seen on the wire."""

    def __init__(self, ts, direction, raw, kind=None, error=None):
        self.ts = ts
        self.direction = direction
        self.raw = raw  # the frame as it travelled, COBS and the 0x00 included
        self.kind = kind
        self.error = error  # why the bytes are not a frame (bad COBS, bad CRC)
        self.body = None
        self.message = None  # the CBOR item of the body, once readable
        self.seq = None
        self.opened = False  # a protected body whose tag was checked with the session key
        self.note = ""

    @property
    def summary(self):
        """One line: kind, and for a message its op, id, status, uri."""
        if self.error:
            return "not a frame (%s), %d bytes" % (self.error, len(self.raw))
        name = KIND_NAMES.get(self.kind, "kind 0x%02x" % self.kind)
        if self.kind == P.KIND_HANDSHAKE and isinstance(self.message, list) and self.message:
            return "handshake %s" % HS_NAMES.get(self.message[0], self.message[0])
        parts = [name]
        if self.seq is not None:
            parts.append("seq %d" % self.seq)
        msg = self.message
        if isinstance(msg, dict):
            op = msg.get(P.K_OP)
            if op is not None:
                parts.append(getattr(P, "OP_NAMES", {}).get(op, "op %r" % (op,)))
            if P.K_ID in msg:
                parts.append("id %r" % (msg[P.K_ID],))
            if P.K_STATUS in msg:
                status = msg[P.K_STATUS]
                parts.append("status %r %s" % (status, getattr(P, "STATUS_TEXT", {}).get(status, "")))
            if P.K_URI in msg:
                parts.append(str(msg[P.K_URI]))
        elif self.kind in (P.KIND_SEALED, P.KIND_SIGNED) and msg is None:
            parts.append("%d bytes, not opened%s" % (len(self.body or b""), (": " + self.note) if self.note else ""))
        return " ".join(parts).rstrip()

    @property
    def diagnostic(self):
        if self.message is None:
            return ""
        return diag(self.message)

    def as_dict(self):
        return {"ts": self.ts, "direction": self.direction, "kind": self.kind, "summary": self.summary,
                "diag": self.diagnostic, "opened": self.opened, "raw": self.raw.hex(), "error": self.error}


class Sniffer:
    """Feed it bytes per direction; it yields an Event per frame. keys: {principal: key}."""

    def __init__(self, keys=None):
        self.keys = dict(keys or {})
        self._buf = {OUT: bytearray(), IN: bytearray(), None: bytearray()}
        self._hs1 = None  # (hs1 body, principal, nonce_c)
        self._session = None  # (suite, client key, agent key, iv)
        self._pending = {}  # request id -> [Partial IVs]: to open the responses

    def feed(self, direction, data, ts=None):
        ts = time.time() if ts is None else ts
        buf = self._buf[direction]
        buf += data
        events = []
        while True:
            end = buf.find(0)
            if end < 0:
                return events
            raw = bytes(buf[: end + 1])
            del buf[: end + 1]
            if end == 0:
                continue  # an empty frame: a sender's resynchronising 0x00
            events.append(self._frame(ts, direction, raw))

    def _frame(self, ts, direction, raw):
        try:
            kind, body = wire.decode_frame(raw[:-1])
        except wire.FrameError as exc:
            return Event(ts, direction, raw, error=str(exc))
        event = Event(ts, direction, raw, kind)
        event.body = body
        if kind in (P.KIND_PLAIN, P.KIND_HANDSHAKE):
            try:
                event.message = cbor2.loads(body)
            except Exception as exc:
                event.note = "body is not CBOR: %s" % exc
            if event.direction is None:
                event.direction = _guess(kind, event.message)
            if kind == P.KIND_HANDSHAKE:
                self._follow(body, event.message)
        elif kind in (P.KIND_SEALED, P.KIND_SIGNED) and len(body) >= P.SEQ_LEN + P.TAG_LEN:
            event.seq = int.from_bytes(body[: P.SEQ_LEN], "big")
            self._open(event)
        return event

    # --- the handshake: nonces, then the session keys --------------------------------------
    def _follow(self, body, msg):
        if not isinstance(msg, list) or not msg:
            return
        if msg[0] == P.HS1 and len(msg) == 4:
            self._hs1 = (body, msg[1], msg[2])
            self._session = None
            self._pending.clear()
        elif msg[0] == P.HS2 and len(msg) == 4 and self._hs1 is not None:
            _, principal, nonce_c = self._hs1
            key = self.keys.get(principal)
            suite = msg[2]
            if key is None or suite not in secure.SESSION_KEY_LEN:
                return
            client, agent, iv = secure.derive(key, bytes(nonce_c) + bytes(msg[1]), P.CLIENT_SENDER_ID,
                                              P.AGENT_SENDER_ID, principal.encode(), suite,
                                              secure.SESSION_KEY_LEN[suite])
            self._session = (suite, client, agent, iv)

    def _open(self, event):
        kind, body = event.kind, event.body
        if self._session is None:
            if kind == P.KIND_SIGNED:  # integrity only: the plaintext is there to read
                self._read(event, body[P.SEQ_LEN: -P.TAG_LEN])
                event.note = "tag not checked (no key)"
            else:
                event.note = "no key for this session" if self._hs1 else "no handshake seen"
            return
        suite, client, agent, iv = self._session
        piv = secure.partial_iv(event.seq)
        if event.direction in (OUT, None):
            plain = secure.unprotect(kind, client, iv, P.CLIENT_SENDER_ID, body,
                                     secure.aad(suite, piv, secure.request_options(kind)))
            if plain is not None:
                event.direction = OUT
                self._read(event, plain)
                event.opened = True
                if isinstance(event.message, dict):
                    self._pending.setdefault(event.message.get(P.K_ID), []).append(piv)
                    while len(self._pending) > 64:
                        del self._pending[next(iter(self._pending))]
                return
        for rid, pivs in list(self._pending.items()):
            for request_piv in pivs:
                plain = secure.unprotect(kind, agent, iv, P.AGENT_SENDER_ID, body,
                                         secure.aad(suite, request_piv, secure.response_options(kind, rid)))
                if plain is not None:
                    event.direction = IN
                    self._read(event, plain)
                    event.opened = True
                    return
        event.note = "its tag fails with this session's keys (altered, replayed, or another session's)"

    def _read(self, event, plain):
        try:
            event.message = cbor2.loads(plain)
        except Exception as exc:
            event.note = "plaintext is not CBOR: %s" % exc


def _guess(kind, msg):
    """The direction of a frame from a stream that does not say (a raw file, one port)."""
    if kind == P.KIND_HANDSHAKE and isinstance(msg, list) and msg:
        return OUT if msg[0] in (P.HS1, P.HS3) else IN
    if isinstance(msg, dict):
        return OUT if P.K_OP in msg else IN
    return None
