"""The replay rules of agent.secure.Channel at their edges: TCP takes only a seq above the
highest; a serial link takes each seq once within REPLAY_WINDOW below the highest; seq is
bounded by SEQ_MAX; the tag is compared in full; replies are sealed under increasing seqs.
Through Channel's public methods and a client written from the spec. Plain asserts.
"""

from agent import cbor
from agent.frame import encode_frame
from agent import proto as P
from agent.secure import Channel, Guard
from tests.agent.spec_client import KEY_A, KEY_GW, Client, agent_seal

_W = P.REPLAY_WINDOW


def _connect(strict, suites=(P.SUITE_CCM,), principal="ServerA", key=KEY_A, guard=None):
    guard = guard or Guard({"ServerA": KEY_A, "GW1": KEY_GW}, {"integrity_only": ["GW1"]})
    ch = Channel(guard, strict)
    client = Client(principal, key, suites)
    hs4 = cbor.loads(ch.handshake(client.hs3(ch.handshake(client.hs1()))))
    assert hs4[:2] == [P.HS4, P.S_OK], hs4
    return ch, client


def _opens(ch, client, seq):
    body, _ = client.seal({0: seq, 1: P.OP_INFO}, seq)
    return ch.open(client.kind(), body) is not None


def test_rule_tcp_takes_only_a_seq_above_the_highest():
    ch, client = _connect(True)
    assert _opens(ch, client, 0)
    assert not _opens(ch, client, 0)  # replay
    assert _opens(ch, client, 1)
    assert _opens(ch, client, 100)  # a gap is fine: lost frames are not waited for
    assert not _opens(ch, client, 99)  # below the highest, even never seen: refused on TCP
    assert not _opens(ch, client, 100)
    assert _opens(ch, client, 101)


def test_rule_serial_window_edge_is_replay_window_below_the_highest():
    ch, client = _connect(False)
    high = _W + 10
    assert _opens(ch, client, high)
    assert _opens(ch, client, high - (_W - 1))  # the oldest seq inside the window
    assert not _opens(ch, client, high - (_W - 1))  # once
    assert not _opens(ch, client, high - _W)  # just outside
    assert _opens(ch, client, high - 1)
    assert not _opens(ch, client, high)


def test_rule_serial_window_slides_and_frees_the_slots_it_passes():
    ch, client = _connect(False)
    for seq in range(11):
        assert _opens(ch, client, seq), seq
    jump = 40
    assert _opens(ch, client, jump)
    # seqs 9, 10 are still inside and were seen; 11..39 are inside and were not, though
    # their ring slots held seqs 0..10 + 32 before the jump
    assert not _opens(ch, client, 9) and not _opens(ch, client, 10)
    for seq in range(11, jump):
        assert _opens(ch, client, seq), seq
    assert not _opens(ch, client, 8)  # fell out of the window
    # a jump of more than a whole window frees every slot
    assert _opens(ch, client, jump + 3 * _W)
    assert _opens(ch, client, jump + 3 * _W - (_W - 1))
    assert _opens(ch, client, jump + 2 * _W + 2)


def test_rule_seq_is_bounded_by_seq_max():
    ch, client = _connect(False)
    assert _opens(ch, client, 255)
    assert _opens(ch, client, 256)  # Partial IV grows to two bytes: both sides agree
    assert _opens(ch, client, 65536)
    assert not _opens(ch, client, P.SEQ_MAX + 1)
    assert _opens(ch, client, P.SEQ_MAX)
    assert not _opens(ch, client, P.SEQ_MAX)


def test_rule_every_tag_byte_counts_for_both_suites():
    for suites, principal, key in (((P.SUITE_CCM,), "ServerA", KEY_A), ((P.SUITE_HMAC,), "GW1", KEY_GW)):
        ch, client = _connect(False, suites, principal, key)
        body, _ = client.seal({0: 1, 1: P.OP_INFO}, 5)
        for i in range(1, P.TAG_LEN + 1):
            bad = bytearray(body)
            bad[-i] ^= 0x01
            assert ch.open(client.kind(), bytes(bad)) is None, (suites, i)
        assert ch.guard.rejected == P.TAG_LEN
        assert ch.open(client.kind(), body) is not None


def test_rule_too_short_or_keyless_frames_are_dropped_and_counted():
    guard = Guard({"ServerA": KEY_A})
    ch = Channel(guard, True)
    assert ch.open(P.KIND_SEALED, b"\x00" * 20) is None  # no session yet
    ch, client = _connect(True, guard=guard)
    body, _ = client.seal({0: 1}, 0)
    assert ch.open(P.KIND_SEALED, body[: P.SEQ_LEN + P.TAG_LEN - 1]) is None
    assert guard.rejected == 2
    assert ch.open(P.KIND_SEALED, body) is not None


def test_rule_replies_are_sealed_under_strictly_increasing_seqs_from_zero():
    ch, client = _connect(True)
    seqs = []
    for rid in range(3):
        body, piv = client.seal({0: rid, 1: P.OP_INFO})
        plain, got_piv = ch.open(P.KIND_SEALED, body)
        reply = agent_seal(ch, cbor.dumps({0: rid, 2: 200}), got_piv, rid)
        seqs.append(int.from_bytes(reply[: P.SEQ_LEN], "big"))
        assert client.open(reply, piv, rid) == {0: rid, 2: 200}
    assert seqs == [0, 1, 2]


def test_rule_a_new_handshake_starts_a_new_window_and_new_reply_seqs():
    guard = Guard({"ServerA": KEY_A})
    ch, client = _connect(True, guard=guard)
    assert _opens(ch, client, 50)
    old = client
    client = Client("ServerA", KEY_A)
    assert cbor.loads(ch.handshake(client.hs3(ch.handshake(client.hs1()))))[:2] == [P.HS4, P.S_OK]
    assert _opens(ch, client, 0)  # new keys, new window
    body, _ = old.seal({0: 1}, 51)
    assert ch.open(P.KIND_SEALED, body) is None  # the old session's keys are gone
    body, piv = client.seal({0: 9, 1: P.OP_INFO}, 1)
    _, got = ch.open(P.KIND_SEALED, body)
    reply = agent_seal(ch, cbor.dumps({0: 9}), got, 9)
    assert reply[: P.SEQ_LEN] == b"\x00" * P.SEQ_LEN


def test_rule_a_handshake_without_its_hs1_or_with_a_bad_mac_is_refused():
    guard = Guard({"ServerA": KEY_A})
    ch = Channel(guard, True)
    client = Client("ServerA", KEY_A)
    hs1 = client.hs1()
    hs3 = client.hs3(Channel(guard, True).handshake(hs1))  # HS2 from another link
    assert cbor.loads(ch.handshake(hs3))[:2] == [P.HS_ERR, P.S_BAD_REQUEST]  # no HS1 here
    assert not ch.established


def test_rule_no_common_suite_is_403_before_any_key_is_used():
    ch = Channel(Guard({"ServerA": KEY_A}), True)
    answer = cbor.loads(ch.handshake(Client("ServerA", KEY_A, (99,)).hs1()))
    assert answer[:2] == [P.HS_ERR, P.S_FORBIDDEN] and "suite" in answer[2], answer
    assert not ch.established and ch.guard.pending == []


def test_rule_a_link_closed_mid_handshake_frees_its_pending_slot():
    from agent.app import App

    app = App({}, None, False, lambda msg: None, {"ServerA": KEY_A})
    guard = app.guard
    link = app.new_link("t", True)
    replies = list(link.receive(encode_frame(P.KIND_HANDSHAKE, Client("ServerA", KEY_A).hs1())))
    assert len(replies) == 1 and len(guard.pending) == 1
    link.close()
    assert guard.pending == []
