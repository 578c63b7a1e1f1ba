"""The agent's security layer (agent/secure.py) against a client written here from the spec
(docs/protocol.md section 7). The host's independent client (cryptography) is checked
against the agent in tests/host/test_host_secure.py; this runs on MicroPython too."""

from agent import cbor, crypto, hal  # noqa: F401
from agent import proto as P
from agent.secure import Channel, Guard

from tests.agent.spec_client import KEY_A, KEY_GW, Client, _aad, _piv, agent_seal  # noqa: F401


def _guard(**policy):
    return Guard({"ServerA": KEY_A, "GW1": KEY_GW}, policy)


def _connect(guard=None, principal="ServerA", key=KEY_A, strict=True, suites=(P.SUITE_CCM,)):
    ch = Channel(guard or _guard(), strict)
    client = Client(principal, key, suites)
    hs4 = ch.handshake(client.hs3(ch.handshake(client.hs1())))
    return ch, client, cbor.loads(hs4)



def test_handshake_proves_both_sides_and_derives_the_same_keys():
    ch, client, hs4 = _connect()
    assert client.server_proved and hs4[:2] == [P.HS4, 200] and len(hs4[2]) == 32
    assert ch.established and ch.principal == "ServerA" and ch.suite == P.SUITE_CCM
    body, piv = client.seal({0: 5, 1: P.OP_INFO})
    plain, got_piv = ch.open(P.KIND_SEALED, body)
    assert cbor.loads(plain) == {0: 5, 1: P.OP_INFO} and got_piv == piv
    reply = agent_seal(ch, cbor.dumps({0: 5, 2: 200}), piv, 5)
    assert client.open(reply, piv, 5) == {0: 5, 2: 200}


def test_wrong_key_fails_at_hs3_with_401_and_the_client_sees_a_bad_mac_d():
    ch, client, hs4 = _connect(key=b"\x99" * 16)
    assert not client.server_proved
    assert hs4[:2] == [P.HS_ERR, P.S_UNAUTHORIZED] and not ch.established


def test_unknown_principal_fails_exactly_like_a_wrong_key():
    ch, client, hs4 = _connect(principal="Nobody", key=KEY_A)
    assert hs4 == [P.HS_ERR, P.S_UNAUTHORIZED, "handshake failed"]
    assert not client.server_proved and not ch.established


def test_one_flipped_bit_anywhere_in_a_sealed_frame_is_dropped_and_counted():
    ch, client, _ = _connect()
    body, piv = client.seal({0: 1, 1: P.OP_INFO})
    for i in range(0, len(body), 3):
        bad = bytearray(body)
        bad[i] ^= 0x10
        assert ch.open(P.KIND_SEALED, bytes(bad)) is None
    assert ch.guard.rejected == len(range(0, len(body), 3))
    assert ch.open(P.KIND_SEALED, body) is not None  # the good one still opens: seq not burnt
    assert ch.open(P.KIND_SIGNED, body) is None  # the kind is bound too


def test_truncated_tag_is_dropped():
    ch, client, _ = _connect()
    body, _ = client.seal({0: 1, 1: P.OP_INFO})
    assert ch.open(P.KIND_SEALED, body[:-1]) is None
    assert ch.open(P.KIND_SEALED, body[:5]) is None


def test_replay_refused_and_tcp_refuses_reordering():
    ch, client, _ = _connect(strict=True)
    first, _ = client.seal({0: 1, 1: P.OP_INFO})
    second, _ = client.seal({0: 2, 1: P.OP_INFO})
    assert ch.open(P.KIND_SEALED, second) is not None
    assert ch.open(P.KIND_SEALED, first) is None  # older than the highest: TCP never reorders
    assert ch.open(P.KIND_SEALED, second) is None  # replay


def test_serial_window_accepts_reordered_frames_once():
    ch, client, _ = _connect(strict=False)
    frames = [client.seal({0: i, 1: P.OP_INFO})[0] for i in range(40)]
    assert ch.open(P.KIND_SEALED, frames[35]) is not None
    assert ch.open(P.KIND_SEALED, frames[10]) is not None  # 25 below: inside the window
    assert ch.open(P.KIND_SEALED, frames[10]) is None  # once
    assert ch.open(P.KIND_SEALED, frames[3]) is None  # 32 below: outside
    assert ch.open(P.KIND_SEALED, frames[39]) is not None


def test_response_is_bound_to_its_request():
    ch, client, _ = _connect()
    body, piv = client.seal({0: 7, 1: P.OP_INFO})
    ch.open(P.KIND_SEALED, body)
    reply = agent_seal(ch, cbor.dumps({0: 7, 2: 200}), piv, 7)
    other_piv = _piv(client.seq)
    failed = False
    try:
        client.open(reply, other_piv, 7)
    except Exception:
        failed = True
    assert failed or client.open(reply, other_piv, 7) is None


def test_integrity_only_needs_policy():
    # refused at HS3, once the key is proven: HS2 must not tell who may use which suite
    ch, client = Channel(_guard(), True), Client("ServerA", KEY_A, (P.SUITE_HMAC,))
    refused = cbor.loads(ch.handshake(client.hs3(ch.handshake(client.hs1()))))
    assert refused[:2] == [P.HS_ERR, P.S_FORBIDDEN] and not ch.established
    ch, client, hs4 = _connect(_guard(integrity_only=["GW1"]), "GW1", KEY_GW, suites=(P.SUITE_HMAC,))
    assert hs4[:2] == [P.HS4, 200] and ch.suite == P.SUITE_HMAC
    body, piv = client.seal({0: 1, 1: P.OP_INFO})
    assert body[4:].startswith(cbor.dumps({0: 1, 1: P.OP_INFO}))  # plaintext on the wire
    assert cbor.loads(ch.open(P.KIND_SIGNED, body)[0]) == {0: 1, 1: P.OP_INFO}
    bad = bytearray(body)
    bad[6] ^= 1
    assert ch.open(P.KIND_SIGNED, bytes(bad)) is None


def test_confidential_policy_covers_subtree_and_structdata_of_ancestors():
    from agent import uri as U

    g = _guard(confidential=["./DMAcc"])

    def needs(uri):
        segs, prop, listing = U.parse(uri)
        return g.needs_confidential(segs, listing)

    assert needs("./DMAcc/ServerA/Name") and needs("DMAcc") and needs("./%44MAcc/ServerA")
    assert needs(".?list=StructData") and needs("./DMAcc?list=Struct")
    assert not needs("./DevInfo/DevId") and not needs(".?list=Struct")
    assert not needs("./DMAccX") and not needs("./DMAcc%25X")


def test_proxy_only_for_listed_servers():
    g = _guard(gateways={"GW1": ["ServerA"]})
    assert g.may_act_for("GW1", "ServerA") and not g.may_act_for("GW1", "ServerB")
    assert not g.may_act_for("ServerA", "ServerA")


def test_failed_handshakes_back_off_per_source_never_per_name():
    g = _guard()
    ch = Channel(g, True, "10.0.0.9")
    for _ in range(2):  # the second failure starts the back-off
        wrong = Client("ServerA", b"\x01" * 16)
        hs4 = cbor.loads(ch.handshake(wrong.hs3(ch.handshake(wrong.hs1()))))
        assert hs4[1] == P.S_UNAUTHORIZED
    again = cbor.loads(ch.handshake(Client("ServerA", KEY_A).hs1()))
    assert again == [P.HS_ERR, P.S_FORBIDDEN, "busy: try again later"]  # no time told
    same_source = Channel(g, True, "10.0.0.9")
    assert cbor.loads(same_source.handshake(Client("ServerA", KEY_A).hs1()))[1] == P.S_FORBIDDEN
    _, client, hs4 = _connect(g)  # ServerA from elsewhere: not refused for their failures
    assert hs4[:2] == [P.HS4, 200]


def test_the_backoff_table_is_bounded_and_never_shared():
    g = _guard()
    for i in range(48):
        g.failed("flood%d" % i)
    assert len(g._backoff) <= 16  # the table's bound (agent/secure.py)
    assert not g.backing_off("someone else")


def test_backoff_ends_after_a_long_gap_across_the_tick_wrap():
    """Rule 10.5: one failure, then 6.2 days (2^29 ms: ticks_diff turns negative) or any gap
    beyond the back-off: no lockout."""
    real = hal.ticks_ms
    now = [(1 << 30) - 100]  # just before the wrap
    hal.ticks_ms = lambda: now[0]
    try:
        g = _guard()
        g.failed("src")
        g.failed("src")
        assert g.backing_off("src")
        for gap in (300, (1 << 29) + 5, (1 << 29) - 5, 1 << 28):
            now[0] = ((1 << 30) - 100 + gap) & ((1 << 30) - 1)  # (ticks_add refuses 2^29 on MicroPython)
            assert not g.backing_off("src"), gap
        now[0] = (1 << 30) - 100
        ch = Channel(g, True, "other")
        hs2 = ch.handshake(Client("ServerA", KEY_A).hs1())
        now[0] = (now[0] + (1 << 29) + 1000) & ((1 << 30) - 1)  # HS3 after the gap: expired, not "fresh"
        client = Client("ServerA", KEY_A)
        assert cbor.loads(ch.handshake(cbor.dumps([P.HS3, b"x" * 32])))[1] == P.S_UNAUTHORIZED
        assert hs2 and client
    finally:
        hal.ticks_ms = real


def test_pending_handshakes_are_bounded_per_source_and_stalled_ones_make_way():
    real = hal.ticks_ms
    now = [1000]
    hal.ticks_ms = lambda: now[0]
    try:
        g = _guard()
        links = [Channel(g, True, "src%d" % i) for i in range(P.HS_PENDING_MAX + 1)]
        answers = [cbor.loads(ch.handshake(Client("ServerA", KEY_A).hs1()))[0] for ch in links]
        assert answers[:-1] == [P.HS2] * P.HS_PENDING_MAX and answers[-1] == P.HS_ERR
        now[0] += 1001  # the stalled are past their 1 s grace: the oldest makes way
        assert cbor.loads(links[-1].handshake(Client("ServerA", KEY_A).hs1()))[0] == P.HS2
        assert g._backoff["src0"][0] == 1  # stalling cost the staller a failure
        one = [Channel(g, True, "one") for _ in range(3)]  # a third waits: busy
        for ch in one:
            ch.handshake(Client("ServerA", KEY_A).hs1())
        assert len([ch for ch in g.pending if ch.source == "one"]) == 2  # per source: two, not a third
    finally:
        hal.ticks_ms = real


def test_a_repeating_rng_still_gives_a_new_device_nonce_every_boot_and_handshake():
    """Rule 10.7: the boot count and the handshake count are in the nonce."""
    real = hal.random_bytes
    hal.random_bytes = lambda n: bytes(n)
    try:
        nonces = set()
        for boot in (1, 2):
            g = Guard({"ServerA": KEY_A}, None, None, boot)
            nonces.add(g.nonce())
            nonces.add(g.nonce())
        assert len(nonces) == 4
    finally:
        hal.random_bytes = real


def test_malformed_handshakes_get_400():
    ch = Channel(_guard(), True)
    for body in (b"\xff", cbor.dumps([1]), cbor.dumps([1, "A", b"short", [10]]), cbor.dumps({1: 2}),
                 cbor.dumps([3, b"x" * 32])):
        assert cbor.loads(ch.handshake(body))[:2] in ([P.HS_ERR, P.S_BAD_REQUEST],), body
