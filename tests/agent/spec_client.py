"""The client side of docs/protocol.md section 7, written from the spec with the agent's own
primitives, for the agent tests (they run on MicroPython too). The host's independent
client, on cryptography, is host_tools/client/secure.py."""

from agent import cbor, ccm, crypto, hal
from agent import proto as P

KEY_A = b"\x11" * 16
KEY_GW = b"\x22" * 32



def agent_seal(channel, plaintext, request_piv, request_id):
    """The protected body an agent's Channel answers a request with, sealed in a buffer of
    its own as a session seals a reply in its workspace (Channel.seal_in_place)."""
    n = len(plaintext)
    buf = bytearray(P.SEQ_LEN + n + P.TAG_LEN)
    buf[P.SEQ_LEN : P.SEQ_LEN + n] = plaintext
    return bytes(buf[: channel.seal_in_place(buf, 0, n, request_piv, request_id)])


class Client:
    def __init__(self, principal, key, suites=(P.SUITE_CCM,)):
        self.principal, self.key, self.suites = principal, key, list(suites)
        self.seq = 0

    def hs1(self):
        self.nonce_c = hal.random_bytes(16)
        self.hs1_body = cbor.dumps([P.HS1, self.principal, self.nonce_c, self.suites])
        return self.hs1_body

    def hs3(self, hs2_body):
        msg = cbor.loads(hs2_body)
        assert msg[0] == P.HS2, msg
        _, nonce_d, suite, mac_d = msg
        expect = crypto.hmac_sha256(self.key, P.HS_LABEL2 + self.hs1_body + cbor.dumps([P.HS2, nonce_d, suite]))
        self.server_proved = crypto.equal(mac_d, expect)
        self.suite = suite
        key_len = 16 if suite == P.SUITE_CCM else 32
        self.send, self.recv, self.iv = crypto.derive(
            self.key, self.nonce_c + nonce_d, P.CLIENT_SENDER_ID, P.AGENT_SENDER_ID,
            self.principal.encode(), suite, key_len, P.IV_LEN)
        return cbor.dumps([P.HS3, crypto.hmac_sha256(self.key, P.HS_LABEL3 + self.hs1_body + hs2_body)])

    def kind(self):
        return P.KIND_SEALED if self.suite == P.SUITE_CCM else P.KIND_SIGNED

    def seal(self, message, seq=None):
        seq = self.seq if seq is None else seq
        self.seq = max(self.seq, seq + 1)
        piv = _piv(seq)
        aad = _aad(self.suite, piv, bytes([self.kind()]))
        plain = cbor.dumps(message)
        head = seq.to_bytes(4, "big")
        if self.suite == P.SUITE_CCM:
            nonce = crypto.nonce(self.iv, P.CLIENT_SENDER_ID, piv)
            return head + ccm.encrypt(hal.aes_block(self.send), nonce, aad, plain, 8), piv
        return head + plain + crypto.hmac_sha256(self.send, aad + head + plain)[:8], piv

    def open(self, body, piv, request_id):
        seq = int.from_bytes(body[:4], "big")
        aad = _aad(self.suite, piv, bytes([self.kind()]) + cbor.dumps(request_id))
        if self.suite == P.SUITE_CCM:
            nonce = crypto.nonce(self.iv, P.AGENT_SENDER_ID, _piv(seq))
            plain = ccm.decrypt(hal.aes_block(self.recv), nonce, aad, body[4:], 8)
        else:
            plain = body[4:-8]
            tag = crypto.hmac_sha256(self.recv, aad + body[:4] + plain)[:8]
            assert crypto.equal(tag, body[-8:])
        return cbor.loads(plain)


def _piv(seq):
    n = 1
    while seq >> (8 * n):
        n += 1
    return seq.to_bytes(n, "big")


def _aad(alg, piv, options):
    return cbor.dumps(["Encrypt0", b"", cbor.dumps([1, [alg], b"\x00", piv, options])])
