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
from .errors import DMError

_MAX_TRACKED = const(16)  # principals with a failure count: bounded, whatever names arrive
_UNKNOWN = "\x00full"  # the backoff slot every name shares once the table is full


def _now():
    return hal.ticks_ms()


def _since(then):
    return hal.ticks_diff(_now(), then)


class _Backoff:
    """Consecutive failures and when the next try is allowed (ticks)."""

    def __init__(self):
        self.count = 0
        self.since = 0

    def wait_ms(self):
        if not self.count:
            return 0
        delay = min(P.BACKOFF_BASE_MS << min(self.count - 1, 16), P.BACKOFF_MAX_MS)
        return max(0, delay - _since(self.since))

    def failed(self):
        self.count += 1
        self.since = _now()


class Guard:
    def __init__(self, keys=None, policy=None, log=None):
        self.keys = keys or {}  # principal -> long-term key (bytes)
        policy = policy or {}
        self.gateways = policy.get("gateways", {})  # gateway -> [ServerIDs it may act for]
        self.integrity_only = tuple(policy.get("integrity_only", ()))
        self.confidential = tuple([_canonical(u) for u in policy.get("confidential", ())])
        self.log = log
        self.pending = []  # channels with a handshake between HS2 and HS3 (bounded)
        self.rejected = 0  # protected frames dropped: bad tag, replay, no session
        self._backoff = {}

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
        return server_id in self.gateways.get(principal, ())

    def needs_confidential(self, uri):
        """True if uri reaches a confidential subtree: at or below one, or a ?list=StructData
        of an ancestor of one (that would carry its values)."""
        if not self.confidential or type(uri) is not str:
            return False
        path, _, query = uri.partition("?")
        path = _canonical(path)
        for root in self.confidential:
            if path == root or path.startswith(root + "/") or path == ".":
                if path != "." or query == "list=StructData":
                    return True
            elif query == "list=StructData" and root.startswith(path + "/"):
                return True
        return False

    def backoff(self, principal):
        # Every name its own slot, known or not (a shared slot for unknown names would tell
        # them apart); only when the table is full do names share one.
        slot = principal
        entry = self._backoff.get(slot)
        if entry is None:
            if len(self._backoff) >= _MAX_TRACKED:
                for name in list(self._backoff):  # forget those that have served their time
                    if not self._backoff[name].wait_ms():
                        del self._backoff[name]
            if len(self._backoff) >= _MAX_TRACKED:
                slot = _UNKNOWN
                entry = self._backoff.get(slot)
            if entry is None:
                entry = self._backoff[slot] = _Backoff()
        return entry

    def succeeded(self, principal):
        self._backoff.pop(principal, None)


def _canonical(uri):
    if uri == "." or uri.startswith("./"):
        return uri
    return "./" + uri


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
    """One link's security state. strict: TCP (strictly increasing seq); else a window."""

    def __init__(self, guard, strict):
        self.guard = guard
        self.strict = strict
        self.principal = None
        self.suite = None
        self._hs = None  # pending handshake: [principal, key, hs1, hs2, started, salt]
        self._link_backoff = _Backoff()
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
        self._high = -1
        self._seen = bytearray(P.REPLAY_WINDOW)

    @property
    def established(self):
        return self._send is not None

    # --- handshake ---------------------------------------------------------------
    def handshake(self, body):
        """One handshake frame body in, the reply body out (always one)."""
        try:
            msg = cbor.loads(body, 4)
            if type(msg) is not list or not msg or msg[0] not in (P.HS1, P.HS3):
                raise ValueError
            if msg[0] == P.HS1:
                return self._hs1(bytes(body), msg)
            return self._hs3(msg)
        except (ValueError, TypeError, IndexError):
            return _error(P.S_BAD_REQUEST, "malformed handshake")

    def _drop_pending(self):
        if self._hs is not None:
            self._hs = None
            self.guard.pending.remove(self)

    def _hs1(self, hs1, msg):
        principal, nonce_c, offered = msg[1], msg[2], msg[3]
        if (len(msg) != 4 or type(principal) is not str or not principal or len(principal) > 64
                or type(nonce_c) is not bytes or len(nonce_c) != P.HS_NONCE_LEN
                or type(offered) is not list):
            raise ValueError
        self._drop_pending()
        self._clear()  # a new handshake ends the link's session
        guard = self.guard
        wait = max(self._link_backoff.wait_ms(), guard.backoff(principal).wait_ms())
        if wait:
            return _error(P.S_FORBIDDEN, "retry after %d ms" % wait)
        if len(guard.pending) >= P.HS_PENDING_MAX:
            for other in guard.pending[:]:  # a peer that never sends HS3 frees its slot in time
                if _since(other._hs[4]) > P.HS_TIMEOUT_MS:
                    other._drop_pending()
            if len(guard.pending) >= P.HS_PENDING_MAX:
                return _error(P.S_FORBIDDEN, "busy: too many handshakes pending")
        suite = guard.suite_for(offered)
        if suite is None:
            return _error(P.S_FORBIDDEN, "no suite this device supports")
        key = guard.keys.get(principal)
        if key is None:  # answer as for a wrong key: do not tell which principals exist
            key = hal.random_bytes(16)
            principal = None
        nonce_d = hal.random_bytes(P.HS_NONCE_LEN)
        mac = crypto.hmac_sha256(key, P.HS_LABEL2 + hs1 + cbor.dumps([P.HS2, nonce_d, suite]))
        hs2 = cbor.dumps([P.HS2, nonce_d, suite, mac])
        self._hs = [principal, key, hs1, hs2, _now(), nonce_c + nonce_d, suite, msg[1]]
        guard.pending.append(self)
        return hs2

    def _hs3(self, msg):
        hs = self._hs
        if hs is None:
            return _error(P.S_BAD_REQUEST, "no handshake in progress")
        self._drop_pending()
        principal, key, hs1, hs2, started, salt, suite, named = hs
        mac_c = msg[1]
        ok = (len(msg) == 2 and type(mac_c) is bytes and _since(started) <= P.HS_TIMEOUT_MS
              and crypto.equal(mac_c, crypto.hmac_sha256(key, P.HS_LABEL3 + hs1 + hs2)))
        if not ok or principal is None:
            self._link_backoff.failed()
            self.guard.backoff(named).failed()
            if self.guard.log:
                self.guard.log("handshake failed for %r" % named)
            return _error(P.S_UNAUTHORIZED, "handshake failed")
        self._link_backoff.count = 0
        self.guard.succeeded(principal)
        if not self.guard.may_use(principal, suite):  # told only to one who proved the key
            return _error(P.S_FORBIDDEN, "integrity-only is not allowed for %s" % principal)
        key_len = 16 if suite == P.SUITE_CCM else 32
        recv, send, self._iv = crypto.derive(
            key, salt, P.CLIENT_SENDER_ID, P.AGENT_SENDER_ID, principal.encode(), suite, key_len, P.IV_LEN)
        if suite == P.SUITE_CCM:  # the AES key schedule once per session, not per frame
            self._spent = None  # its room is for these (see _clear): freed just before
            gc.collect()
            recv = hal.aes_block(recv)
            send = hal.aes_block(send)
        self._recv, self._send, self._spent = recv, send, None
        self.principal, self.suite = principal, suite
        return cbor.dumps([P.HS4, P.S_OK])

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
        if self._recv is None or kind != self.kind() or len(body) < P.SEQ_LEN + P.TAG_LEN:
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
        seen[seq % P.REPLAY_WINDOW] = 1

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
        self._drop_pending()
        self._clear()
        self._spent = None
