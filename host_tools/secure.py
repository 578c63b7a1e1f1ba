"""The host's side of the security layer (docs/protocol.md section 7), on `cryptography`
and cbor2: independent of the agent's own crypto, so that each checks the other.

ClientChannel does the handshake (HS1..HS4), derives the session keys as RFC 8613 does,
seals requests and opens responses, accepting a response only if its seq is new and its
AAD names one of the Partial IVs sent for that request.
"""

import hmac as std_hmac
import os

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from agent import proto as P


class HandshakeError(Exception):
    """The handshake failed; status is the OMA DM status (401 bad proof, 403 policy)."""

    def __init__(self, status, message):
        self.status = status
        Exception.__init__(self, "%d %s" % (status, message))


def _hmac(key, *parts):
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    for part in parts:
        mac.update(bytes(part))
    return mac.finalize()


def _hkdf(salt, secret, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def derive(secret, salt, sender_id, recipient_id, id_context, alg, key_len, iv_len=P.IV_LEN):
    """RFC 8613 section 3.2: (sender key, recipient key, common IV)."""
    def info(ident, kind, length):
        return cbor2.dumps([ident, id_context, alg, kind, length])

    return (_hkdf(salt, secret, info(sender_id, "Key", key_len), key_len),
            _hkdf(salt, secret, info(recipient_id, "Key", key_len), key_len),
            _hkdf(salt, secret, info(b"", "IV", iv_len), iv_len))


def nonce(common_iv, sender_id, piv):
    """RFC 8613 section 5.2."""
    n = len(common_iv)
    raw = bytes([len(sender_id)]) + sender_id.rjust(n - 6, b"\x00") + piv.rjust(5, b"\x00")
    return bytes(a ^ b for a, b in zip(raw, common_iv))


def partial_iv(seq):
    return seq.to_bytes(max(1, (seq.bit_length() + 7) // 8), "big")


def aad(alg, request_piv, options):
    external = cbor2.dumps([1, [alg], P.CLIENT_SENDER_ID, request_piv, options])
    return cbor2.dumps(["Encrypt0", b"", external])


class ClientChannel:
    def __init__(self, principal, key, suites=(P.SUITE_CCM,)):
        self.principal = principal
        self.key = bytes(key)
        self.suites = list(suites)
        self.suite = None
        self._seq = 0
        self._high = -1  # highest response seq seen

    # --- handshake -----------------------------------------------------------------
    def hs1(self):
        self._nonce_c = os.urandom(P.HS_NONCE_LEN)
        self._hs1 = cbor2.dumps([P.HS1, self.principal, self._nonce_c, self.suites])
        return self._hs1

    def hs3(self, hs2):
        """Check the device's proof; -> the HS3 body. HandshakeError on ERR or a bad proof."""
        msg = _decode_hs(hs2)
        if msg[0] != P.HS2 or len(msg) != 4:
            raise HandshakeError(P.S_BAD_REQUEST, "unexpected handshake reply")
        _, nonce_d, suite, mac_d = msg
        expect = _hmac(self.key, P.HS_LABEL2, self._hs1, cbor2.dumps([P.HS2, nonce_d, suite]))
        if not std_hmac.compare_digest(expect, bytes(mac_d)):
            raise HandshakeError(P.S_UNAUTHORIZED, "the device did not prove the key")
        if suite not in self.suites:
            raise HandshakeError(P.S_FORBIDDEN, "the device chose a suite not offered")
        self.suite = suite
        key_len = 16 if suite == P.SUITE_CCM else 32
        self._send, self._recv, self._iv = derive(
            self.key, self._nonce_c + nonce_d, P.CLIENT_SENDER_ID, P.AGENT_SENDER_ID,
            self.principal.encode(), suite, key_len)
        return cbor2.dumps([P.HS3, _hmac(self.key, P.HS_LABEL3, self._hs1, hs2)])

    def hs4(self, body):
        msg = _decode_hs(body)
        if msg[:2] != [P.HS4, P.S_OK]:
            raise HandshakeError(P.S_BAD_REQUEST, "unexpected handshake reply")

    # --- protected frames ----------------------------------------------------------------
    def kind(self):
        return P.KIND_SEALED if self.suite == P.SUITE_CCM else P.KIND_SIGNED

    def seal(self, plaintext):
        """-> (frame kind, body, Partial IV) of one request; every call takes a new seq."""
        seq = self._seq
        self._seq += 1
        piv = partial_iv(seq)
        kind = self.kind()
        head = seq.to_bytes(P.SEQ_LEN, "big")
        a = aad(self.suite, piv, bytes([kind]))
        if kind == P.KIND_SEALED:
            body = head + AESCCM(self._send, P.TAG_LEN).encrypt(
                nonce(self._iv, P.CLIENT_SENDER_ID, piv), plaintext, a)
        else:
            body = head + plaintext + _hmac(self._send, a, head, plaintext)[: P.TAG_LEN]
        return kind, body, piv

    def open(self, kind, body, request_id, pivs):
        """The plaintext of a response to request_id (sent under any of pivs), or None if it
        is not one: wrong kind, old seq, or a tag that fails for every piv."""
        body = bytes(body)
        if kind != self.kind() or len(body) < P.SEQ_LEN + P.TAG_LEN:
            return None
        seq = int.from_bytes(body[: P.SEQ_LEN], "big")
        if seq <= self._high:
            return None
        options = bytes([kind]) + cbor2.dumps(request_id)
        for piv in pivs:
            a = aad(self.suite, piv, options)
            if kind == P.KIND_SEALED:
                try:
                    plain = AESCCM(self._recv, P.TAG_LEN).decrypt(
                        nonce(self._iv, P.AGENT_SENDER_ID, partial_iv(seq)), body[P.SEQ_LEN :], a)
                except Exception:  # InvalidTag: try the next piv
                    continue
            else:
                plain = body[P.SEQ_LEN : -P.TAG_LEN]
                tag = _hmac(self._recv, a, body[: P.SEQ_LEN], plain)[: P.TAG_LEN]
                if not std_hmac.compare_digest(tag, body[-P.TAG_LEN :]):
                    continue
            self._high = seq
            return plain
        return None


def _decode_hs(body):
    try:
        msg = cbor2.loads(bytes(body))
    except Exception:
        raise HandshakeError(P.S_BAD_REQUEST, "malformed handshake reply") from None
    if not isinstance(msg, list) or not msg:
        raise HandshakeError(P.S_BAD_REQUEST, "malformed handshake reply")
    if msg[0] == P.HS_ERR:
        raise HandshakeError(msg[1], msg[2] if len(msg) > 2 else "")
    return msg


def read_key_file(path):
    """(principal, key) from a key file (JSON {"principal", "key": hex}, as agent/keys.py)."""
    import json

    try:
        with open(path) as f:
            doc = json.load(f)
        principal, key = doc["principal"], bytes.fromhex(doc["key"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError("key file %s: not a dmagent key file (%s)" % (path, exc)) from None
    if not isinstance(principal, str) or len(key) not in (16, 32):
        raise ValueError("key file %s: needs a principal and a 16 or 32 byte key" % path)
    return principal, key
