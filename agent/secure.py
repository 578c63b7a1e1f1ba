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


from . import cbor, ccm, crypto, hal
from . import proto as P
from . import uri as U
from .errors import DMError

_PENDING_PER_SOURCE = const(2)  # of the device's HS_PENDING_MAX, one source holds at most this
_GRACE_MS = const(1000)  # a pending handshake this old may be pushed out by a new one
_SOURCES = const(16)  # sources with a failure count: bounded, whatever arrives

def _within(then, ms):
    """True if then (ticks) lies no more than ms in the past. Ticks wrap (2^30 ms on
    MicroPython): a then that looks like the future is from before a long gap, so not within."""
    age = hal.ticks_diff(hal.ticks_ms(), then)
    return 0 <= age <= ms


def _waiting(entry):
    """True while a source's next try is not allowed yet. entry: [consecutive failures, ticks
    of the last one] (a list, not an object: one per source). ticks_diff throughout: no
    lockout after a long gap, see _within."""
    count = entry[0]
    if count < 2:  # one mistake is free: back-off starts at the second failure
        return False
    delay = min(P.BACKOFF_BASE_MS << min(count - 2, 16), P.BACKOFF_MAX_MS)  # pragma: no mutate 16 -> 17 (past the cap)
    return _within(entry[1], delay - 1)


class Guard:
    def __init__(self, keys=None, policy=None, log=None, boot=0):  # pragma: no mutate 0 -> 1 (App passes boot)
        self.keys = keys or {}  # principal -> long-term key (bytes)
        policy = policy or {}
        # Types were checked by agent.config at start-up: lists, never a string to search in.
        self.gateways = policy.get("gateways", {})  # gateway -> [ServerIDs it may act for]
        self.integrity_only = tuple(policy.get("integrity_only", ()))
        self.owners = tuple(policy.get("owners", ()))  # who may Exec the REPL (dispatch.py)
        confidential = []  # a loop, not a comprehension: one function less in the heap
        for uri in policy.get("confidential", ()):
            confidential.append(U.parse(uri)[0])
        self.confidential = tuple(confidential)
        self.log = log
        self.pending = []  # channels with a handshake between HS2 and HS3 (bounded)
        self.rejected = 0  # protected frames dropped: bad tag, replay, no session
        self._backoff = {}  # source -> [failures, ticks of the last] (_waiting): who failed, never whom they named
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
        return entry is not None and _waiting(entry)

    def failed(self, source):
        entry = self._backoff.get(source)
        if entry is None:
            table = self._backoff
            if len(table) >= _SOURCES:
                # Bounded: forget who has served their time, else the least punished source
                # (never a shared slot: one source's failures are nobody else's).
                for name in list(table):
                    if not _waiting(table[name]):
                        del table[name]
                if len(table) >= _SOURCES:
                    least = None
                    for name in table:
                        if least is None or table[name][0] < table[least][0]:
                            least = name
                    del table[least]
            entry = table[source] = [0, None]  # failures, ticks of the last: both set just below
        entry[0] += 1
        entry[1] = hal.ticks_ms()

    def succeeded(self, source):
        self._backoff.pop(source, None)

    # --- pending handshakes ------------------------------------------------------------
    def admit(self, channel):
        """Room for channel's new pending handshake? A source holds at most
        _PENDING_PER_SOURCE; when the device's HS_PENDING_MAX are taken, the expired go,
        then the oldest past _GRACE_MS. Pushed out counts as a failure of its source:
        stalling costs the staller."""
        pending = self.pending
        own = 0
        for other in pending:
            own += other.source == channel.source
        if own >= _PENDING_PER_SOURCE:
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


class Channel:
    """One link's security state. strict: TCP (strictly increasing seq); else a window.
    source: whom this link's failures count against (its peer's address, or the link)."""

    def __init__(self, guard, strict, source=None):
        self.guard = guard
        self.strict = strict
        self.source = source
        self.principal = None
        self.suite = None
        self.kind = None  # the frame kind of the session: KIND_SEALED or KIND_SIGNED (HS3)
        self._hs = None  # pending handshake: [principal, key, hs1, hs2, started, salt, suite, named]
        self._send = self._spent = None
        self._clear()

    def _clear(self):
        self.principal = self.suite = self.kind = None
        if self._send is not None:
            # The ended session's key schedules stay allocated until the next session's
            # are made, so that their room is still in one piece then (the handshake's own
            # small objects would otherwise settle in it: soaks at 110k re-keying every
            # 10 requests then found no 304 bytes for a key schedule with 8 KB free).
            self._spent = (self._send, self._recv)
        self._send = self._recv = self._iv = None
        self.established = False  # True from HS4 on: session keys in _send, _recv, _iv
        self._send_seq = 0
        self._high = -1  # pragma: no mutate 1 -> 2 (any start below seq 0 reads and marks the same)
        self._seen = bytearray(P.REPLAY_WINDOW)

    # --- handshake ---------------------------------------------------------------
    def handshake(self, body):
        """One handshake frame body in, the reply body out (always one). The link's session,
        if any, lives on until a new one is established: an unauthenticated HS1 ends nothing."""
        try:
            msg = cbor.loads(body, 4)
            if type(msg) is not list or not msg or msg[0] not in (P.HS1, P.HS3):
                raise ValueError
            guard = self.guard
            if msg[0] == P.HS1:  # -> HS2: this device's nonce and suite, MACed
                principal, nonce_c, offered = msg[1], msg[2], msg[3]
                if (len(msg) != 4 or type(principal) is not str or not principal or len(principal) > 64
                        or type(nonce_c) is not bytes or len(nonce_c) != P.HS_NONCE_LEN
                        or type(offered) is not list):
                    raise ValueError
                self.abandon(False)  # this link's own earlier handshake: a lost HS2 is retried so
                # Busy and backing off read the same, without a time: nothing to plan an attack by.
                if guard.backing_off(self.source) or not guard.admit(self):
                    return cbor.dumps([P.HS_ERR, P.S_FORBIDDEN, "busy: try again later"])
                # AES-CCM if offered, else HMAC-only if offered. The same for every name, so
                # HS2 does not tell who exists; whether the principal may use it is HS3's.
                if P.SUITE_CCM in offered:
                    suite = P.SUITE_CCM
                elif P.SUITE_HMAC in offered:
                    suite = P.SUITE_HMAC
                else:
                    return cbor.dumps([P.HS_ERR, P.S_FORBIDDEN, "no suite this device supports"])
                key = guard.keys.get(principal)
                if key is None:  # answer as for a wrong key: do not tell which principals exist
                    key = hal.random_bytes(16)  # pragma: no mutate 16 -> 17 (a random key of any length fails alike)
                    principal = None
                hs1 = bytes(body)
                nonce_d = guard.nonce()
                mac = crypto.hmac_sha256(key, P.HS_LABEL2 + hs1 + cbor.dumps([P.HS2, nonce_d, suite]))
                hs2 = cbor.dumps([P.HS2, nonce_d, suite, mac])
                self._hs = [principal, key, hs1, hs2, hal.ticks_ms(), nonce_c + nonce_d, suite, msg[1]]
                guard.pending.append(self)
                return hs2
            # HS3 -> HS4: the client's MAC over both messages proves its key
            hs = self._hs
            if hs is None:
                return cbor.dumps([P.HS_ERR, P.S_BAD_REQUEST, "no handshake in progress"])
            self.abandon(False)
            principal, key, hs1, hs2, started, salt, suite, named = hs
            hs3 = bytes(body)
            mac_c = msg[1]
            ok = (len(msg) == 2 and type(mac_c) is bytes and _within(started, P.HS_TIMEOUT_MS)
                  and crypto.equal(mac_c, crypto.hmac_sha256(key, P.HS_LABEL3 + hs1 + hs2)))
            if not ok or principal is None:
                guard.failed(self.source)
                if guard.log:
                    guard.log("handshake failed for %r" % named)
                return cbor.dumps([P.HS_ERR, P.S_UNAUTHORIZED, "handshake failed"])
            guard.succeeded(self.source)
            # told only to one who proved the key
            if suite != P.SUITE_CCM and principal not in guard.integrity_only:
                return cbor.dumps([P.HS_ERR, P.S_FORBIDDEN, "integrity-only is not allowed for %s" % principal])
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
            self.principal, self.suite, self.established = principal, suite, True
            self.kind = P.KIND_SEALED if suite == P.SUITE_CCM else P.KIND_SIGNED
            return cbor.dumps([P.HS4, P.S_OK, mac4])
        except (ValueError, TypeError, IndexError):
            return cbor.dumps([P.HS_ERR, P.S_BAD_REQUEST, "malformed handshake"])

    def abandon(self, failed=True):
        """Drop our pending handshake, if any; failed: without its HS3, a failure of our
        source (not so when this link's own next HS1 or its HS3 takes its place)."""
        if self._hs is not None:
            self._hs = None
            self.guard.pending.remove(self)
            if failed:
                self.guard.failed(self.source)

    # --- protected frames ----------------------------------------------------------
    def open(self, kind, body):
        """-> (plaintext, request Partial IV), or None (dropped and counted): a bad tag, a
        replay (strict: any seq not above the highest; else one seen or behind the window)."""
        plain = None
        # Add -> Sub here is equivalent: a shorter body fails its tag check below all the same
        if self._recv is not None and kind == self.kind and len(body) >= P.SEQ_LEN + P.TAG_LEN:  # pragma: no mutate Add -> Sub
            seq = int.from_bytes(bytes(body[: P.SEQ_LEN]), "big")
            high = self._high
            seen = self._seen
            if seq <= P.SEQ_MAX and (seq > high or not (self.strict or high - seq >= P.REPLAY_WINDOW
                                                        or seen[seq % P.REPLAY_WINDOW])):
                piv = _piv(seq)
                aad = _aad(self.suite, piv, bytes([kind]))
                payload = body[P.SEQ_LEN :]
                if kind == P.KIND_SEALED:
                    nonce = crypto.nonce(self._iv, P.CLIENT_SENDER_ID, piv)
                    if type(payload) is memoryview:  # (writable) opened where it is: no copy
                        plain = ccm.decrypt_in_place(self._recv, nonce, aad, payload, P.TAG_LEN)
                    else:
                        plain = ccm.decrypt(self._recv, nonce, aad, payload, P.TAG_LEN)
                else:
                    plain = bytes(payload[: -P.TAG_LEN])
                    tag = crypto.hmac_sha256(self._recv, aad + bytes(body[: P.SEQ_LEN]) + plain)[: P.TAG_LEN]
                    if not crypto.equal(tag, bytes(payload[-P.TAG_LEN :])):
                        plain = None
                if plain is not None:  # seen now
                    if seq > high:
                        start = max(high + 1, seq - P.REPLAY_WINDOW + 1)
                        for s in range(start, seq):  # slots now inside the window: not seen yet
                            seen[s % P.REPLAY_WINDOW] = 0
                        self._high = seq
                    seen[seq % P.REPLAY_WINDOW] = 1  # pragma: no mutate 1 -> 2 (any non-zero marks it seen)
                    return plain, piv
        self.guard.rejected += 1
        return None

    def seal_in_place(self, buf, start, n, request_piv, request_id):
        """The body of the protected frame answering a request, made in buf: the plaintext
        is at buf[start + SEQ_LEN:][:n]; seq goes before it, the tag after it, and the body
        is encrypted where it lies. -> end of the body. A response as large as a frame
        costs no heap (a board's is small)."""
        seq = self._send_seq
        if seq > P.SEQ_MAX:
            raise DMError(P.S_UNAUTHORIZED, "session exhausted: handshake again")
        self._send_seq = seq + 1
        kind = self.kind
        buf[start : start + P.SEQ_LEN] = seq.to_bytes(P.SEQ_LEN, "big")
        aad = _aad(self.suite, request_piv, bytes([kind]) + cbor.dumps(request_id))
        body = start + P.SEQ_LEN
        if kind == P.KIND_SEALED:
            nonce = crypto.nonce(self._iv, P.AGENT_SENDER_ID, _piv(seq))
            return ccm.encrypt_in_place(self._send, nonce, aad, buf, body, n, P.TAG_LEN)
        end = body + n
        buf[end : end + P.TAG_LEN] = crypto.hmac_sha256(self._send, aad, memoryview(buf)[start:end])[: P.TAG_LEN]  # seq || plaintext
        return end + P.TAG_LEN

    def close(self):
        self.abandon()  # a link that goes with its handshake pending stalled it
        self._clear()
        self._spent = None
