"""The agent's side of the security layer (docs/protocol.md section 7).

Guard is device-wide: who holds a key, what policy allows, who is backing off, how many
handshakes are pending. Channel is one link's: its handshake, session keys, sequence
numbers and replay window. Neither knows the transport; session.py drives them.
A frame that fails here is dropped and counted, never answered: an attacker learns nothing.
"""

import gc

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from . import cbor, crypto, hal
from . import proto as P
from . import uri as U
from .errors import DMError

_PENDING_PER_SOURCE = const(2)  # of the device's HS_PENDING_MAX, one source holds at most this
_GRACE_MS = const(1000)  # a pending handshake this old may be pushed out by a new one
_SOURCES = const(16)  # sources with a failure count: bounded, whatever arrives

def _now():
    return hal.ticks_ms()


def _since(then):
    return hal.ticks_diff(_now(), then)


def _within(then, ms):
    """True if then lies no more than ms in the past. Ticks wrap (2^30 ms on MicroPython):
    a then that looks like the future is from before a long gap, so not within."""
    age = _since(then)
    return 0 <= age <= ms


class _Backoff:
    """Consecutive failures of one source and when the last one was (ticks)."""

    def __init__(self):
        self.count = 0
        self.since = 0  # pragma: no mutate (failed() sets it before waiting() reads it)

    def waiting(self):
        """True while the next try is not allowed yet (ticks_diff throughout: no lockout after
        a long gap, see _within)."""
        if self.count < 2:  # one mistake is free: back-off starts at the second failure
            return False
        delay = min(P.BACKOFF_BASE_MS << min(self.count - 2, 16), P.BACKOFF_MAX_MS)  # pragma: no mutate 16 -> 17 (past the cap)
        return _within(self.since, delay - 1)

    def failed(self):
        self.count += 1
        self.since = _now()


class Guard:
    def __init__(self, keys=None, policy=None, log=None, boot=0):  # pragma: no mutate 0 -> 1 (App passes boot)
        self.keys = keys or {}  # principal -> long-term key (bytes)
        policy = policy or {}
        # Types were checked by agent.config at start-up: lists, never a string to search in.
        self.gateways = policy.get("gateways", {})  # gateway -> [ServerIDs it may act for]
        self.integrity_only = tuple(policy.get("integrity_only", ()))
        self.owners = tuple(policy.get("owners", ()))  # who may Exec the REPL (dispatch.py)
        self.confidential = tuple([U.parse(u)[0] for u in policy.get("confidential", ())])
        self.log = log
        self.pending = []  # channels with a handshake between HS2 and HS3 (bounded)
        self.rejected = 0  # protected frames dropped: bad tag, replay, no session
        self._backoff = {}  # source -> _Backoff: who failed, never whom they named
        self._nonce_prefix = (boot & 0xFFFFFFFF).to_bytes(4, "big")  # see nonce()
        self._handshakes = 0

    def nonce(self):
        """The device's handshake nonce: random bytes hashed with the boot count and this
        boot's handshake count, so an RNG that repeats across boots cannot repeat one."""
        self._handshakes = (self._handshakes + 1) & 0x3FFFFFFF
        h = crypto.sha256(hal.random_bytes(P.HS_NONCE_LEN))
        h.update(self._nonce_prefix)
        h.update(self._handshakes.to_bytes(4, "big"))
        return h.digest()[: P.HS_NONCE_LEN]

    @staticmethod
    def suite_for(offered):
        """The suite HS2 names: AES-CCM if offered, else HMAC-only if offered. The same for
        every name, so HS2 does not tell who exists; may_use() is checked at HS3."""
        if P.SUITE_CCM in offered:
            return P.SUITE_CCM
        if P.SUITE_HMAC in offered:
            return P.SUITE_HMAC
        return None

    def may_use(self, principal, suite):
        return suite == P.SUITE_CCM or principal in self.integrity_only

    def may_act_for(self, principal, server_id):
        ids = self.gateways.get(principal)
        return type(ids) is list and server_id in ids  # a whole ServerID of a list, never text

    def needs_confidential(self, segs, listing=None):
        """True if the canonical URI (decoded segments, agent.uri) reaches a confidential
        subtree: at or below one, or a ?list=StructData of an ancestor of one (that would
        carry its values). Whoever the request speaks for, a gateway's `for` included: what
        is protected is the session the bytes travel on."""
        for root in self.confidential:
            if segs[: len(root)] == root or (listing == "StructData" and root[: len(segs)] == segs):
                return True
        return False

    # --- back-off: per source (a TCP peer's address; a serial link is its own) ------------
    def backing_off(self, source):
        entry = self._backoff.get(source)
        return entry is not None and entry.waiting()

    def failed(self, source):
        entry = self._backoff.get(source)
        if entry is None:
            table = self._backoff
            if len(table) >= _SOURCES:
                # Bounded: forget who has served their time, else the least punished source
                # (never a shared slot: one source's failures are nobody else's).
                for name in list(table):
                    if not table[name].waiting():
                        del table[name]
                if len(table) >= _SOURCES:
                    least = None
                    for name in table:
                        if least is None or table[name].count < table[least].count:
                            least = name
                    del table[least]
            entry = table[source] = _Backoff()
        entry.failed()

    def succeeded(self, source):
        self._backoff.pop(source, None)

    # --- pending handshakes ------------------------------------------------------------
    def admit(self, channel):
        """Room for channel's new pending handshake? A source holds at most
        _PENDING_PER_SOURCE; when the device's HS_PENDING_MAX are taken, the expired go,
        then the oldest past _GRACE_MS. Pushed out counts as a failure of its source:
        stalling costs the staller."""
        pending = self.pending
        if sum([ch.source == channel.source for ch in pending]) >= _PENDING_PER_SOURCE:
            return False  # its own wait their HS3 (a busy host is not punished for being busy)
        if len(pending) >= P.HS_PENDING_MAX:
            for other in pending[:]:
                if not _within(other._hs[4], P.HS_TIMEOUT_MS):
                    other.abandon()
        if len(pending) >= P.HS_PENDING_MAX:
            oldest = pending[0]  # appended in order of arrival
            if not _within(oldest._hs[4], _GRACE_MS):
                oldest.abandon()
        return len(pending) < P.HS_PENDING_MAX


def _piv(seq):
    """RFC 8613 Partial IV: seq as the shortest big-endian byte string (h'00' for 0)."""
    n = 1
    while seq >> (8 * n):
        n += 1
    return seq.to_bytes(n, "big")


def _aad(alg, request_piv, options):
    external = cbor.dumps([1, [alg], P.CLIENT_SENDER_ID, request_piv, options])
    return cbor.dumps(["Encrypt0", b"", external])


def _error(status, msg):
    return cbor.dumps([P.HS_ERR, status, msg])


class Channel:
    """One link's security state. strict: TCP (strictly increasing seq); else a window.
    source: whom this link's failures count against (its peer's address, or the link)."""

    def __init__(self, guard, strict, source=None):
        self.guard = guard
        self.strict = strict
        self.source = source
        self.principal = None
        self.suite = None
        self._hs = None  # pending handshake: [principal, key, hs1, hs2, started, salt, suite, named]
        self._send = self._spent = None
        self._clear()

    def _clear(self):
        self.principal = self.suite = None
        if self._send is not None:
            # The ended session's key schedules stay allocated until the next session's
            # are made, so that their room is still in one piece then (the handshake's own
            # small objects would otherwise settle in it: soaks at 110k re-keying every
            # 10 requests then found no 304 bytes for a key schedule with 8 KB free).
            self._spent = (self._send, self._recv)
        self._send = self._recv = self._iv = None
        self._send_seq = 0
        self._high = -1  # pragma: no mutate 1 -> 2 (any start below seq 0 reads and marks the same)
        self._seen = bytearray(P.REPLAY_WINDOW)

    @property
    def established(self):
        return self._send is not None

    # --- handshake ---------------------------------------------------------------
    def handshake(self, body):
        """One handshake frame body in, the reply body out (always one). The link's session,
        if any, lives on until a new one is established: an unauthenticated HS1 ends nothing."""
        try:
            msg = cbor.loads(body, 4)
            if type(msg) is not list or not msg or msg[0] not in (P.HS1, P.HS3):
                raise ValueError
            if msg[0] == P.HS1:
                return self._hs1(bytes(body), msg)
            return self._hs3(bytes(body), msg)
        except (ValueError, TypeError, IndexError):
            return _error(P.S_BAD_REQUEST, "malformed handshake")

    def _drop_pending(self):
        if self._hs is not None:
            self._hs = None
            self.guard.pending.remove(self)

    def abandon(self):
        """Our pending handshake is dropped without its HS3: a failure of our source."""
        if self._hs is not None:
            self._drop_pending()
            self.guard.failed(self.source)

    def _hs1(self, hs1, msg):
        principal, nonce_c, offered = msg[1], msg[2], msg[3]
        if (len(msg) != 4 or type(principal) is not str or not principal or len(principal) > 64
                or type(nonce_c) is not bytes or len(nonce_c) != P.HS_NONCE_LEN
                or type(offered) is not list):
            raise ValueError
        guard = self.guard
        self._drop_pending()  # this link's own earlier handshake: a lost HS2 is retried so
        # Busy and backing off read the same, without a time: nothing to plan an attack by.
        if guard.backing_off(self.source) or not guard.admit(self):
            return _error(P.S_FORBIDDEN, "busy: try again later")
        suite = guard.suite_for(offered)
        if suite is None:
            return _error(P.S_FORBIDDEN, "no suite this device supports")
        key = guard.keys.get(principal)
        if key is None:  # answer as for a wrong key: do not tell which principals exist
            key = hal.random_bytes(16)  # pragma: no mutate 16 -> 17 (a random key of any length fails alike)
            principal = None
        nonce_d = guard.nonce()
        mac = crypto.hmac_sha256(key, P.HS_LABEL2 + hs1 + cbor.dumps([P.HS2, nonce_d, suite]))
        hs2 = cbor.dumps([P.HS2, nonce_d, suite, mac])
        self._hs = [principal, key, hs1, hs2, _now(), nonce_c + nonce_d, suite, msg[1]]
        guard.pending.append(self)
        return hs2

    def _hs3(self, hs3, msg):
        hs = self._hs
        if hs is None:
            return _error(P.S_BAD_REQUEST, "no handshake in progress")
        self._drop_pending()
        principal, key, hs1, hs2, started, salt, suite, named = hs
        mac_c = msg[1]
        ok = (len(msg) == 2 and type(mac_c) is bytes and _within(started, P.HS_TIMEOUT_MS)
              and crypto.equal(mac_c, crypto.hmac_sha256(key, P.HS_LABEL3 + hs1 + hs2)))
        if not ok or principal is None:
            self.guard.failed(self.source)
            if self.guard.log:
                self.guard.log("handshake failed for %r" % named)
            return _error(P.S_UNAUTHORIZED, "handshake failed")
        self.guard.succeeded(self.source)
        if not self.guard.may_use(principal, suite):  # told only to one who proved the key
            return _error(P.S_FORBIDDEN, "integrity-only is not allowed for %s" % principal)
        self._clear()  # the link's old session ends here, once the new one is proven
        mac4 = crypto.hmac_sha256(key, P.HS_LABEL4 + hs1 + hs2 + hs3)
        key_len = 16 if suite == P.SUITE_CCM else 32
        recv, send, iv = crypto.derive(
            key, salt, P.CLIENT_SENDER_ID, P.AGENT_SENDER_ID, principal.encode(), suite, key_len, P.IV_LEN)
        if suite == P.SUITE_CCM:  # the AES key schedule once per session, not per frame
            self._spent = None  # its room is for these (see _clear): freed just before
            gc.collect()
            recv = hal.aes_block(recv)
            send = hal.aes_block(send)
        self._recv, self._send, self._iv, self._spent = recv, send, iv, None
        self.principal, self.suite = principal, suite
        return cbor.dumps([P.HS4, P.S_OK, mac4])

    # --- protected frames ----------------------------------------------------------
    def kind(self):
        return P.KIND_SEALED if self.suite == P.SUITE_CCM else P.KIND_SIGNED

    def open(self, kind, body):
        """-> (plaintext, request Partial IV), or None (dropped and counted)."""
        opened = self._open(kind, body)
        if opened is None:
            self.guard.rejected += 1
        return opened

    def _open(self, kind, body):
        # Add -> Sub here is equivalent: a shorter body fails its tag check below all the same
        if self._recv is None or kind != self.kind() or len(body) < P.SEQ_LEN + P.TAG_LEN:  # pragma: no mutate Add -> Sub
            return None
        seq = int.from_bytes(bytes(body[: P.SEQ_LEN]), "big")
        if seq > P.SEQ_MAX or not self._fresh(seq):
            return None
        piv = _piv(seq)
        aad = _aad(self.suite, piv, bytes([kind]))
        payload = body[P.SEQ_LEN :]
        if kind == P.KIND_SEALED:
            nonce = crypto.nonce(self._iv, P.CLIENT_SENDER_ID, piv)
            plain = crypto.ccm_decrypt(self._recv, nonce, aad, payload, P.TAG_LEN)
        else:
            plain = bytes(payload[: -P.TAG_LEN])
            tag = crypto.hmac_sha256(self._recv, aad + bytes(body[: P.SEQ_LEN]) + plain)[: P.TAG_LEN]
            if not crypto.equal(tag, bytes(payload[-P.TAG_LEN :])):
                plain = None
        if plain is None:
            return None
        self._mark(seq)
        return plain, piv

    def _fresh(self, seq):
        if seq > self._high:
            return True
        if self.strict or self._high - seq >= P.REPLAY_WINDOW:
            return False
        return not self._seen[seq % P.REPLAY_WINDOW]

    def _mark(self, seq):
        seen = self._seen
        if seq > self._high:
            start = max(self._high + 1, seq - P.REPLAY_WINDOW + 1)
            for s in range(start, seq):  # slots now inside the window: not seen yet
                seen[s % P.REPLAY_WINDOW] = 0
            self._high = seq
        seen[seq % P.REPLAY_WINDOW] = 1  # pragma: no mutate 1 -> 2 (any non-zero marks it seen)

    def seal(self, plaintext, request_piv, request_id):
        """The body of the protected frame answering a request."""
        n = len(plaintext)
        buf = bytearray(P.SEQ_LEN + n + P.TAG_LEN)
        buf[P.SEQ_LEN : P.SEQ_LEN + n] = plaintext
        return bytes(buf[: self.seal_in_place(buf, 0, n, request_piv, request_id)])

    def seal_in_place(self, buf, start, n, request_piv, request_id):
        """seal(), in buf: the plaintext is at buf[start + SEQ_LEN:][:n]; seq goes before it,
        the tag after it, and the body is encrypted where it lies. -> end of the body.
        A response as large as a frame costs no heap (a board's is small)."""
        seq = self._send_seq
        if seq > P.SEQ_MAX:
            raise DMError(P.S_UNAUTHORIZED, "session exhausted: handshake again")
        self._send_seq = seq + 1
        kind = self.kind()
        buf[start : start + P.SEQ_LEN] = seq.to_bytes(P.SEQ_LEN, "big")
        aad = _aad(self.suite, request_piv, bytes([kind]) + cbor.dumps(request_id))
        body = start + P.SEQ_LEN
        mv = memoryview(buf)
        if kind == P.KIND_SEALED:
            from . import ccm

            nonce = crypto.nonce(self._iv, P.AGENT_SENDER_ID, _piv(seq))
            return ccm.encrypt_in_place(self._send, nonce, aad, buf, body, n, P.TAG_LEN)
        mac = crypto.HMAC(self._send, aad)
        mac.update(mv[start : body + n])  # seq || plaintext
        end = body + n
        buf[end : end + P.TAG_LEN] = mac.digest()[: P.TAG_LEN]
        return end + P.TAG_LEN

    def close(self):
        self.abandon()  # a link that goes with its handshake pending stalled it
        self._clear()
        self._spent = None
