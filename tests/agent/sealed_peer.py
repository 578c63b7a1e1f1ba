"""One sealed link for agent tests: a spec Client (tests/agent/spec_client.py) and the bytes
it exchanges with an agent Link. Shared by test_secure_session and test_session_sealed_edges.
Plain code: runs under MicroPython too."""

from agent import cbor
from agent import proto as P
from agent.frame import FrameDecoder, encode_frame
from tests.agent.spec_client import Client

_peers = []  # closed when the next test makes its App: their buffers go back to the pool


class Peer:
    """One link: a Client, and the bytes it exchanges with the agent's Link."""

    def __init__(self, app, stream=True):
        self.app = app
        self.link = app.new_link("test", stream)
        self.decoder = FrameDecoder(512)  # the replies here are small
        self.client = None
        self.rid = 0
        _peers.append(self)

    def close(self):
        self.link.close()
        self.decoder.close()

    def exchange(self, wire):
        """Wire bytes in -> [(kind, body)] of the replies."""
        out = []
        for reply in self.link.receive(wire):
            for kind, body in self.decoder.feed(bytes(reply)):
                out.append((kind, bytes(body)))
        return out

    def handshake(self, principal, key, suites=(P.SUITE_CCM,)):
        self.client = Client(principal, key, suites)
        (kind, hs2), = self.exchange(encode_frame(P.KIND_HANDSHAKE, self.client.hs1()))
        if cbor.loads(hs2)[0] != P.HS2:
            return cbor.loads(hs2)
        (kind, hs4), = self.exchange(encode_frame(P.KIND_HANDSHAKE, self.client.hs3(hs2)))
        return cbor.loads(hs4)

    def sealed(self, op, rid=None, seq=None, **fields):
        """(wire bytes of one sealed request, its piv, its id)."""
        if rid is None:
            self.rid += 1
            rid = self.rid
        message = {P.K_ID: rid, P.K_OP: op}
        for name, value in fields.items():
            message[getattr(P, "K_" + name.upper())] = value
        body, piv = self.client.seal(message, seq)
        return encode_frame(self.client.kind(), body), piv, rid

    def request(self, op, **fields):
        wire, piv, rid = self.sealed(op, **fields)
        return self.answer(wire, piv, rid)

    def answer(self, wire, piv, rid):
        replies = self.exchange(wire)
        if not replies:
            return None
        (kind, body), = replies
        return self.client.open(body, piv, rid)
