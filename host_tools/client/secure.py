"""The host's side of the security layer (docs/protocol.md section 7), on `cryptography`
and cbor2: independent of the agent's own crypto (agent/crypto.py, agent/ccm.py), so that
each checks the other. Only the constants of agent/proto.py are shared.

    ch = ClientChannel("ServerA", key)
    hs2 = send_handshake(ch.hs1())       # HS1 -> HS2
    hs4 = send_handshake(ch.on_hs2(hs2)) # checks the device's proof; HS3 -> HS4
    ch.on_hs4(hs4)                       # established
    kind, body, piv = ch.seal(cbor2.dumps({0: rid, 1: op}), rid)
    plaintext = ch.open(kind, reply_body, rid)   # or pivs=[...] of every try

A response is accepted only if its seq is higher than every response seq seen and its AAD
names one of the Partial IVs sent for that request (and its request id): anything else
raises FrameRejected, and the channel's state is left as it was.
"""

import hmac as std_hmac

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dmagent.agent import proto as P
from dmagent.host_tools.client.device import DeviceError
from dmagent.host_tools.client.keys import KEY_LENGTHS, KeyFileError, Secret, load_key_file

SUITES = {P.SUITE_CCM: "AES-CCM-16-64-128", P.SUITE_HMAC: "HMAC 256/64"}
SESSION_KEY_LEN = {P.SUITE_CCM: 16, P.SUITE_HMAC: 32}  # docs/protocol.md 7.1
_PIVS_KEPT = 64  # request ids whose Partial IVs the channel remembers for open()


class SecurityError(DeviceError):
    """The security layer refused something; status is an OMA DM status code."""


class HandshakeError(SecurityError):
    """The handshake failed: the device's ERR (its status: 400, 401, 403, 406), or the
    device's proof failed here (401), or it broke the protocol (400, 403)."""


class FrameRejected(SecurityError):
    """A protected frame that is not an acceptable response: reason is one of
    'no session', 'kind', 'short', 'seq' (replayed, reordered or past the limit) or 'tag'
    (forged, altered, or bound to another request)."""

    def __init__(self, reason, message):
        self.reason = reason
        SecurityError.__init__(self, P.S_UNAUTHORIZED, message)


# --- primitives (cryptography), one function per rule of 7.3 and 7.4 -------------------------
def hmac_sha256(key, *parts):
    mac = crypto_hmac.HMAC(bytes(key), hashes.SHA256())
    for part in parts:
        mac.update(bytes(part))
    return mac.finalize()


def hkdf_sha256(salt, secret, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(bytes(secret))


def derive(secret, salt, sender_id, recipient_id, id_context, alg, key_len=16, iv_len=P.IV_LEN):
    """RFC 8613 section 3.2: (sender key, recipient key, common IV). id_context None: absent
    (CBOR null in info); salt None or b"": the empty Master Salt."""
    def info(ident, kind, length):
        return cbor2.dumps([bytes(ident), id_context, alg, kind, length])

    salt = bytes(salt) if salt else None  # HKDF: an absent salt is HashLen zero bytes, as b""
    return (hkdf_sha256(salt, secret, info(sender_id, "Key", key_len), key_len),
            hkdf_sha256(salt, secret, info(recipient_id, "Key", key_len), key_len),
            hkdf_sha256(salt, secret, info(b"", "IV", iv_len), iv_len))


def nonce(common_iv, id_piv, piv):
    """RFC 8613 section 5.2: length of ID_PIV, ID_PIV left-padded to iv_len - 6 bytes, the
    Partial IV left-padded to 5 bytes, XORed with the Common IV."""
    n = len(common_iv)
    if len(id_piv) > n - 6 or len(piv) > 5:
        raise ValueError("sender id or partial IV too long for the nonce")
    raw = bytes([len(id_piv)]) + bytes(id_piv).rjust(n - 6, b"\x00") + bytes(piv).rjust(5, b"\x00")
    return bytes(a ^ b for a, b in zip(raw, common_iv))


def partial_iv(seq):
    """seq as the shortest big-endian byte string (h'00' for 0)."""
    return seq.to_bytes(max(1, (seq.bit_length() + 7) // 8), "big")


def aad(alg, request_piv, options, request_kid=P.CLIENT_SENDER_ID):
    """RFC 8613 section 5.4: cbor(["Encrypt0", h'', cbor([1, [alg], kid, piv, options])])."""
    external = cbor2.dumps([1, [alg], bytes(request_kid), bytes(request_piv), bytes(options)])
    return cbor2.dumps(["Encrypt0", b"", external])


def request_options(kind):
    return bytes([kind])


def response_options(kind, request_id):
    return bytes([kind]) + cbor2.dumps(request_id)  # f6 (null) for a request without an id


def hs2_mac(key, hs1, nonce_d, suite):
    return hmac_sha256(key, P.HS_LABEL2, hs1, cbor2.dumps([P.HS2, nonce_d, suite]))


def hs3_body(key, hs1, hs2):
    """The HS3 body proving key over the transcript hs1 || hs2 (exact bytes)."""
    return cbor2.dumps([P.HS3, hmac_sha256(key, P.HS_LABEL3, hs1, hs2)])


def hs4_mac(key, hs1, hs2, hs3):
    """The device's MAC in HS4: over the whole transcript, so an HS4 answers this handshake."""
    return hmac_sha256(key, P.HS_LABEL4, hs1, hs2, hs3)


def _protect(kind, key, iv, sender_id, seq, plaintext, a):
    """body = seq || payload, sealed (0x03) or tagged (0x04) by the sender with seq."""
    head = seq.to_bytes(P.SEQ_LEN, "big")
    if kind == P.KIND_SEALED:
        return head + AESCCM(key, P.TAG_LEN).encrypt(nonce(iv, sender_id, partial_iv(seq)), plaintext, a)
    return head + plaintext + hmac_sha256(key, a, head, plaintext)[: P.TAG_LEN]


def _unprotect(kind, key, iv, sender_id, body, a):
    """The plaintext of a protected body, or None if its tag fails."""
    head, payload = body[: P.SEQ_LEN], body[P.SEQ_LEN :]
    if kind == P.KIND_SEALED:
        seq = int.from_bytes(head, "big")
        try:
            return AESCCM(key, P.TAG_LEN).decrypt(nonce(iv, sender_id, partial_iv(seq)), payload, a)
        except InvalidTag:
            return None
    plain = payload[: -P.TAG_LEN]
    tag = hmac_sha256(key, a, head, plain)[: P.TAG_LEN]
    return plain if std_hmac.compare_digest(tag, payload[-P.TAG_LEN :]) else None


unprotect = _unprotect  # for readers of the wire (host_tools.sniff): the same rule, not a copy


# --- the client's channel ---------------------------------------------------------------------
class ClientChannel:
    """One session's client side: handshake, keys, sequence numbers, response acceptance."""

    def __init__(self, principal, key, suites=(P.SUITE_CCM,)):
        if not isinstance(principal, str) or not principal or len(principal.encode()) > 64:
            raise ValueError("principal must be a non-empty ServerID of at most 64 bytes")
        if not isinstance(key, (bytes, bytearray)) or len(key) not in KEY_LENGTHS:
            raise ValueError("a long-term key is 16 or 32 bytes")
        suites = list(suites)
        if not suites or any(s not in SUITES for s in suites):
            raise ValueError("suites: a non-empty list of %s" % sorted(SUITES))
        self.principal = principal
        self._key = Secret(bytes(key))
        self.suites = suites
        self.suite = None
        self._hs1 = None
        self._pending = None  # (suite, send key, recv key, iv) between HS2 and HS4
        self._transcript = None  # (hs1, hs2, hs3) bytes, for HS4's MAC
        self._send = self._recv = self._iv = None
        self._seq = 0  # the next request seq
        self._high = -1  # the highest response seq accepted
        self._sent = {}  # request id -> [Partial IVs it was sealed under], bounded

    def __repr__(self):
        return "<ClientChannel %s suite=%s %s>" % (
            self.principal, self.suite, "established" if self.established else "not established")

    @property
    def established(self):
        return self._send is not None

    # --- handshake -------------------------------------------------------------------------
    def hs1(self):
        """The HS1 body; starts (or restarts) the handshake and forgets any session."""
        import os

        self._reset()
        self._nonce_c = os.urandom(P.HS_NONCE_LEN)
        self._hs1 = cbor2.dumps([P.HS1, self.principal, self._nonce_c, self.suites])
        return self._hs1

    def on_hs2(self, body):
        """Check the device's HS2 (its proof of the key over our nonce); -> the HS3 body.
        HandshakeError: the device's ERR status, 401 if its proof fails (a wrong key, or a
        principal the device holds no key for: the two look the same), 400 malformed, 403
        a suite we did not offer. On a failed proof, the exception's `hs3` is an HS3 the
        caller may still send so the device frees the pending slot at once."""
        if self._hs1 is None or self._pending is not None or self.established:
            raise HandshakeError(P.S_BAD_REQUEST, "HS2 out of order: send HS1 first")
        hs2 = bytes(body)
        msg = _decode_hs(hs2, P.HS2)
        if len(msg) != 4:
            raise HandshakeError(P.S_BAD_REQUEST, "malformed HS2")
        _, nonce_d, suite, mac_d = msg
        if (not isinstance(nonce_d, bytes) or len(nonce_d) != P.HS_NONCE_LEN
                or not isinstance(suite, int) or isinstance(suite, bool)
                or not isinstance(mac_d, bytes) or len(mac_d) != P.HS_MAC_LEN):
            raise HandshakeError(P.S_BAD_REQUEST, "malformed HS2")
        if not std_hmac.compare_digest(hs2_mac(self._key, self._hs1, nonce_d, suite), mac_d):
            exc = HandshakeError(P.S_UNAUTHORIZED, "the device did not prove the key"
                                 " (a wrong key, or the device holds none for %s)" % self.principal)
            exc.hs3 = hs3_body(self._key, self._hs1, hs2)
            self._hs1 = None
            raise exc
        if suite not in self.suites:
            self._hs1 = None
            raise HandshakeError(P.S_FORBIDDEN, "the device chose suite %r, not one offered" % suite)
        send, recv, iv = derive(self._key, self._nonce_c + nonce_d, P.CLIENT_SENDER_ID,
                                P.AGENT_SENDER_ID, self.principal.encode(), suite,
                                SESSION_KEY_LEN[suite])
        self._pending = (suite, send, recv, iv)
        hs3 = hs3_body(self._key, self._hs1, hs2)
        self._transcript = (self._hs1, hs2, hs3)
        return hs3

    def on_hs4(self, body):
        """The device's answer to HS3: [4, 200, mac] establishes the session once mac is the
        device's over this handshake's transcript; ERR raises HandshakeError with its status
        (401: the device refused our proof); an HS4 that is not this one's: 401."""
        if self._pending is None:
            raise HandshakeError(P.S_BAD_REQUEST, "HS4 out of order: no HS3 sent")
        try:
            msg = _decode_hs(body, P.HS4)
        except HandshakeError:
            self._reset()
            raise
        if len(msg) != 3 or msg[1] != P.S_OK or not isinstance(msg[2], bytes):
            self._reset()
            raise HandshakeError(P.S_BAD_REQUEST, "malformed HS4")
        if not std_hmac.compare_digest(hs4_mac(self._key, *self._transcript), msg[2]):
            self._reset()
            raise HandshakeError(P.S_UNAUTHORIZED, "HS4 is not the device's answer to this handshake")
        self.suite, self._send, self._recv, self._iv = self._pending
        self._pending = None
        self._hs1 = None

    def _reset(self):
        self.suite = None
        self._pending = None
        self._send = self._recv = self._iv = None
        self._seq = 0
        self._high = -1
        self._sent = {}

    # --- protected frames --------------------------------------------------------------------
    @property
    def kind(self):
        """The frame kind of this session: 0x03 sealed (AES-CCM) or 0x04 signed (HMAC)."""
        return P.KIND_SEALED if self.suite == P.SUITE_CCM else P.KIND_SIGNED

    def seal(self, message, request_id=None):
        """message (the CBOR bytes of one request; a dict is encoded) -> (frame kind, body,
        Partial IV), under a new seq on every call: a retry re-seals the same message and
        request id, and the response may come under any of the Partial IVs."""
        if not self.established:
            raise SecurityError(P.S_UNAUTHORIZED, "no session: handshake first")
        if isinstance(message, dict):
            if request_id is None:
                request_id = message.get(P.K_ID)
            message = cbor2.dumps(message)
        seq = self._seq
        if seq > P.SEQ_MAX:
            raise SecurityError(P.S_UNAUTHORIZED, "session exhausted (seq 2^30): handshake again")
        self._seq = seq + 1
        piv = partial_iv(seq)
        kind = self.kind
        body = _protect(kind, self._send, self._iv, P.CLIENT_SENDER_ID, seq, bytes(message),
                        aad(self.suite, piv, request_options(kind)))
        pivs = self._sent.pop(request_id, [])
        pivs.append(piv)
        self._sent[request_id] = pivs  # most recent last: the oldest goes first
        while len(self._sent) > _PIVS_KEPT:
            del self._sent[next(iter(self._sent))]
        return kind, body, piv

    def sent_pivs(self, request_id):
        return list(self._sent.get(request_id, ()))

    def open(self, kind, body, request_id, pivs=None):
        """The plaintext of the device's response to request_id, sent under one of pivs
        (default: every Partial IV this channel sealed request_id under). FrameRejected if it
        is not one: no session, wrong kind, too short, a seq not above every one accepted
        (replayed or reordered), or a tag that fails for every piv (altered, forged, or the
        response to another request). A rejected frame changes nothing."""
        if not self.established:
            raise FrameRejected("no session", "protected frame without a session")
        body = bytes(body)
        if kind != self.kind:
            raise FrameRejected("kind", "frame kind %r is not this session's %d" % (kind, self.kind))
        if len(body) < P.SEQ_LEN + P.TAG_LEN:
            raise FrameRejected("short", "protected frame of %d bytes: too short" % len(body))
        seq = int.from_bytes(body[: P.SEQ_LEN], "big")
        if seq <= self._high or seq > P.SEQ_MAX:
            raise FrameRejected("seq", "response seq %d: replayed or out of order (seen %d)" % (seq, self._high))
        if pivs is None:
            pivs = self._sent.get(request_id, ())
        options = response_options(kind, request_id)
        for piv in pivs:
            plain = _unprotect(kind, self._recv, self._iv, P.AGENT_SENDER_ID, body,
                               aad(self.suite, piv, options))
            if plain is not None:
                self._high = seq
                return plain
        raise FrameRejected("tag", "response tag fails: altered, forged, or not for request %r" % (request_id,))

    def forget(self, request_id):
        """Stop accepting responses to request_id (its answer has been taken)."""
        self._sent.pop(request_id, None)


def _decode_hs(body, expected):
    try:
        msg = cbor2.loads(bytes(body))
    except Exception:
        raise HandshakeError(P.S_BAD_REQUEST, "malformed handshake reply") from None
    if not isinstance(msg, list) or not msg:
        raise HandshakeError(P.S_BAD_REQUEST, "malformed handshake reply")
    if msg[0] == P.HS_ERR:
        status = msg[1] if len(msg) > 1 and isinstance(msg[1], int) else P.S_BAD_REQUEST
        text = msg[2] if len(msg) > 2 and isinstance(msg[2], str) else ""
        raise HandshakeError(status, "the device refused the handshake" + (": " + text if text else ""))
    if msg[0] != expected:
        raise HandshakeError(P.S_BAD_REQUEST, "expected HS%d, got message %r" % (expected, msg[0]))
    return msg


def read_key_file(path):
    """(principal, key) from a key file; ValueError (KeyFileError) naming the file if bad."""
    return load_key_file(path)


__all__ = ["ClientChannel", "SecurityError", "HandshakeError", "FrameRejected", "KeyFileError",
           "derive", "nonce", "partial_iv", "aad", "hs2_mac", "hs3_body", "hs4_mac", "read_key_file"]
