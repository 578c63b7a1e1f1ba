"""One sealed link for agent tests: a spec Client (tests/agent/spec_client.py) and the bytes
it exchanges with an agent Link. Shared by test_secure_session and the test_session_* modules.
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


# --- an App with keys, one at a time (a board-sized heap holds one), and a read of ./R ------
WINDOW_CONFIG = {
    "device": {"devid": "urn:dmagent:sec"},
    "accounts": [{"server_id": "ServerA"}, {"server_id": "ServerB"}],
    "security": {"gateways": {"GW1": ["ServerB"]}},
    "open_reads": ["./R"],
}


def keyed_app(log=None, insecure=False, config=WINDOW_CONFIG):
    """A fresh App holding the keys of ServerA and GW1; the last test's peers are closed."""
    import gc

    from agent.app import App
    from tests.agent.spec_client import KEY_A, KEY_GW

    while _peers:
        _peers.pop().close()
    gc.collect()
    return App(config, None, insecure, log or (lambda msg: None), {"ServerA": KEY_A, "GW1": KEY_GW})


def get_r(peer, rid, sealed, **fields):
    """The value of ./R, read under id rid, plain or sealed (fields: e.g. for=...)."""
    if not sealed:
        message = {P.K_ID: rid, P.K_OP: P.OP_GET, P.K_URI: "./R"}
        replies = peer.exchange(encode_frame(P.KIND_PLAIN, cbor.dumps(message)))
        return cbor.loads(replies[0][1])[P.K_VALUE]
    wire, piv, rid = peer.sealed(P.OP_GET, rid=rid, uri="./R", **fields)
    return peer.answer(wire, piv, rid)[P.K_VALUE]
