"""Handshake rules of agent.secure (docs/protocol.md s.7): a source's back-off starts at its
second failed handshake and doubles with each one after, from BACKOFF_BASE_MS to BACKOFF_MAX_MS;
the failure table holds 16 sources, and a full one lets the least punished go; with every
pending slot taken, all expired handshakes make way (each a failure of its source); nonce_d is
built as the spec says, so a repeating RNG cannot repeat it; a message nested past four levels
is malformed, as is an HS1 principal over 64 characters; the serial window takes each seq
once in any order; a closed channel has no session. The clock (hal.ticks_ms) and RNG
(hal.random_bytes) are the agent's, held still by the test. Plain asserts.
"""

from agent import hal
from agent import proto as P
from agent.secure import Guard
from tests.agent.spec_client import KEY_A


def _frozen(now):
    real = hal.ticks_ms
    hal.ticks_ms = lambda: now[0]
    return real


def test_rule_the_back_off_doubles_from_its_base_up_to_its_cap():
    now = [5000]
    real = _frozen(now)
    try:
        g = Guard({"ServerA": KEY_A}, {})
        for failures, delay in ((2, P.BACKOFF_BASE_MS), (3, 2 * P.BACKOFF_BASE_MS), (4, 4 * P.BACKOFF_BASE_MS),
                                (40, P.BACKOFF_MAX_MS)):
            g.succeeded("src")
            now[0] = 5000
            for _ in range(failures):
                g.failed("src")
            assert g.backing_off("src")
            now[0] = 5000 + delay - 1
            assert g.backing_off("src"), (failures, delay)
            now[0] = 5000 + delay
            assert not g.backing_off("src"), (failures, delay)
    finally:
        hal.ticks_ms = real


def test_rule_one_failure_is_free():
    now = [5000]
    real = _frozen(now)
    try:
        g = Guard({"ServerA": KEY_A}, {})
        g.failed("src")
        assert not g.backing_off("src")
    finally:
        hal.ticks_ms = real


def test_rule_a_full_failure_table_holds_16_sources_and_lets_the_least_punished_go():
    now = [5000]
    real = _frozen(now)
    try:
        g = Guard({"ServerA": KEY_A}, {})
        g.failed("worst")  # three failures: punished most
        g.failed("worst")
        g.failed("worst")
        for i in range(16):
            g.failed("s%d" % i)
            g.failed("s%d" % i)
        assert g.backing_off("s15")  # the newest is in
        waiting = [name for name in ["worst"] + ["s%d" % i for i in range(16)] if g.backing_off(name)]
        assert len(waiting) == 16 and "worst" in waiting, waiting  # one with the fewest went
    finally:
        hal.ticks_ms = real


def test_rule_nonce_d_is_the_hash_of_random_bytes_the_boot_count_and_the_handshake_count():
    # docs/protocol.md s.7: SHA-256(16 random bytes || boot count || handshake count)[0:16]
    from hashlib import sha256

    real = hal.random_bytes
    hal.random_bytes = lambda n: b"\x5a" * n  # an RNG that repeats: the counts still differ
    try:
        g = Guard({"ServerA": KEY_A}, {}, boot=7)
        for count in (1, 2, 3):
            want = sha256(b"\x5a" * 16 + (7).to_bytes(4, "big") + count.to_bytes(4, "big")).digest()[:16]
            assert g.nonce() == want, count
    finally:
        hal.random_bytes = real


def test_rule_when_all_pending_slots_are_taken_every_expired_handshake_goes():
    from agent import cbor
    from agent.secure import Channel
    from tests.agent.spec_client import Client

    now = [5000]
    real = _frozen(now)
    try:
        g = Guard({"ServerA": KEY_A}, {})
        stalled = [Channel(g, True, "src%d" % i) for i in range(P.HS_PENDING_MAX)]
        for ch in stalled:
            assert cbor.loads(ch.handshake(Client("ServerA", KEY_A).hs1()))[0] == P.HS2
        now[0] += P.HS_TIMEOUT_MS + 1  # all of them expired
        late = Channel(g, True, "late")
        assert cbor.loads(late.handshake(Client("ServerA", KEY_A).hs1()))[0] == P.HS2
        assert g.pending == [late]  # not only the oldest: every expired one made way
        assert [g._backoff["src%d" % i][0] for i in range(P.HS_PENDING_MAX)] == [1] * P.HS_PENDING_MAX
    finally:
        hal.ticks_ms = real


def test_rule_a_handshake_message_nested_past_four_levels_is_malformed():
    from agent import cbor
    from agent.secure import Channel

    ch = Channel(Guard({"ServerA": KEY_A}, {}), True, "s")
    deep = cbor.dumps([P.HS1, "ServerA", b"n" * 16, [[[[P.SUITE_CCM]]]]])  # five levels
    assert cbor.loads(ch.handshake(deep)) == [P.HS_ERR, P.S_BAD_REQUEST, "malformed handshake"]
    four = cbor.dumps([P.HS1, "ServerA", b"n" * 16, [[[P.SUITE_CCM]]]])  # four: read, then refused
    assert cbor.loads(ch.handshake(four))[:2] == [P.HS_ERR, P.S_FORBIDDEN]


def test_rule_an_hs1_principal_is_at_most_64_characters():
    from agent import cbor
    from agent.secure import Channel

    ch = Channel(Guard({"ServerA": KEY_A}, {}), True, "s")
    for name, first in (("p" * 64, P.HS2), ("p" * 65, P.HS_ERR)):  # unknown: answered as a wrong key
        reply = cbor.loads(ch.handshake(cbor.dumps([P.HS1, name, b"n" * 16, [P.SUITE_CCM]])))
        assert reply[0] == first, (len(name), reply)
    assert reply == [P.HS_ERR, P.S_BAD_REQUEST, "malformed handshake"]


def _hs(ch, client):
    from agent import cbor

    return cbor.loads(ch.handshake(client.hs3(ch.handshake(client.hs1()))))


def test_rule_a_retried_hs1_replaces_the_links_own_pending_handshake():
    from agent import cbor
    from agent.secure import Channel
    from tests.agent.spec_client import Client

    g = Guard({"ServerA": KEY_A}, {})
    ch = Channel(g, True, "s")
    for _ in range(3):  # HS2 lost twice: the client sends HS1 again
        assert cbor.loads(ch.handshake(Client("ServerA", KEY_A).hs1()))[0] == P.HS2
    assert g.pending == [ch]


def test_rule_a_failed_hs3_is_logged_with_the_principal_it_claimed_and_a_success_resets_the_count():
    from agent.secure import Channel
    from tests.agent.spec_client import Client

    now = [5000]
    real = _frozen(now)
    try:
        seen = []
        g = Guard({"ServerA": KEY_A}, {}, seen.append)
        ch = Channel(g, True, "s")
        assert _hs(ch, Client("ServerA", b"\x99" * 16))[:2] == [P.HS_ERR, P.S_UNAUTHORIZED]
        assert seen == ["handshake failed for 'ServerA'"]
        assert _hs(ch, Client("ServerA", KEY_A))[:2] == [P.HS4, P.S_OK]
        _hs(ch, Client("ServerA", b"\x99" * 16))  # one failure after a success: free again
        assert not g.backing_off("s")
    finally:
        hal.ticks_ms = real


def test_rule_a_protected_frame_too_short_for_seq_and_tag_is_dropped_and_counted():
    from agent.secure import Channel
    from tests.agent.spec_client import Client

    g = Guard({"ServerA": KEY_A}, {})
    ch = Channel(g, True, "s")
    assert _hs(ch, Client("ServerA", KEY_A))[:2] == [P.HS4, P.S_OK]
    for n in range(P.SEQ_LEN + P.TAG_LEN):
        assert ch.open(P.KIND_SEALED, b"\x00" * n) is None, n
    assert g.rejected == P.SEQ_LEN + P.TAG_LEN


def test_rule_a_ccm_sessions_key_schedules_are_made_after_a_collection():
    # the ended session's schedules are freed just before (see Channel._clear): a board's
    # heap finds room for the new ones in one piece only once they are collected
    import gc

    from agent.secure import Channel
    from tests.agent.spec_client import Client

    track = getattr(gc, "callbacks", None)
    if track is None:
        return  # MicroPython: a collection cannot be seen
    ch = Channel(Guard({"ServerA": KEY_A}, {}), True, "s")
    client = Client("ServerA", KEY_A)
    hs3 = client.hs3(ch.handshake(client.hs1()))
    phases = []
    track.append(lambda phase, info: phases.append(phase))
    gc.disable()  # only a collection the agent asks for
    try:
        ch.handshake(hs3)
    finally:
        gc.enable()
        track.pop()
    assert ch.established and "start" in phases


def _window_channel():
    from agent.secure import Channel
    from tests.agent.spec_client import Client

    ch = Channel(Guard({"ServerA": KEY_A}, {}), False, "serial")  # a serial link: the window
    client = Client("ServerA", KEY_A)
    assert _hs(ch, client)[:2] == [P.HS4, P.S_OK]
    return ch, lambda seq: ch.open(P.KIND_SEALED, client.seal({0: seq, 1: P.OP_INFO}, seq)[0]) is not None


def test_rule_in_the_serial_window_each_seq_is_taken_once_whatever_the_order():
    ch, taken = _window_channel()
    assert taken(1) and taken(2) and taken(3)
    assert not taken(2) and not taken(3)  # replays of the newest
    w = P.REPLAY_WINDOW
    assert taken(w) and taken(w + 2)  # the window moves on; w + 1 shares seq 1's slot
    assert taken(w + 1)  # late, and within the window: taken once
    assert not taken(w + 1) and not taken(1)  # 1 is now past the window


def test_rule_a_closed_channel_ends_its_session():
    ch, taken = _window_channel()
    assert taken(1)
    ch.close()
    assert not ch.established and not taken(2)
