"""The host's security layer (host_tools/client/secure.py, on cryptography and cbor2) against the
agent's (agent/secure.py, on its own HMAC, HKDF and AES-CCM), in process: no server.

Two independent implementations of docs/protocol.md section 7 that agree on every byte, and
refuse every altered, replayed, reordered, truncated or misdirected frame, on both sides.
The host's primitives are checked on their own against RFC 8613 Appendix C.
"""

import os
import time

import cbor2
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from dmagent.agent import frame
from dmagent.agent import proto as P

frame.reserve(3)  # as a board does; the links opened below take these buffers

from dmagent.agent import crypto as agent_crypto  # noqa: E402
from dmagent.agent import secure as agent_secure  # noqa: E402
from dmagent.agent.app import App  # noqa: E402
from dmagent.agent.secure import Channel, Guard  # noqa: E402
from dmagent.host_tools.client import secure as S  # noqa: E402
from dmagent.host_tools.client import wire  # noqa: E402
from dmagent.host_tools.client.device import Device, DeviceError, DeviceTimeout  # noqa: E402
from dmagent.host_tools.client.secure import ClientChannel, FrameRejected, HandshakeError, SecurityError  # noqa: E402

KEY_A = bytes(range(0x10, 0x20))
KEY_GW = bytes(range(0x40, 0x60))  # 32 bytes
WRONG = b"\x99" * 16
BOTH_SUITES = [pytest.param(P.SUITE_CCM, id="ccm"), pytest.param(P.SUITE_HMAC, id="hmac")]


def _guard(**policy):
    policy.setdefault("integrity_only", ["ServerA", "GW1"])
    return Guard({"ServerA": KEY_A, "GW1": KEY_GW}, policy)


def _connect(suite=P.SUITE_CCM, strict=True, principal="ServerA", key=KEY_A, guard=None):
    agent = Channel(guard or _guard(), strict)
    client = ClientChannel(principal, key, (suite,))
    hs3 = client.on_hs2(agent.handshake(client.hs1()))
    client.on_hs4(agent.handshake(hs3))
    return agent, client


def _request(client, rid, op=P.OP_INFO, more=None):
    message = {P.K_ID: rid, P.K_OP: op}
    message.update(more or {})
    return client.seal(cbor2.dumps(message), rid)


def _reply(agent, piv, rid, status=200):
    """The agent's sealed answer, made in a buffer as a session makes it (seal_in_place)."""
    plain = cbor2.dumps({P.K_ID: rid, P.K_STATUS: status})
    buf = bytearray(P.SEQ_LEN + len(plain) + P.TAG_LEN)
    buf[P.SEQ_LEN : P.SEQ_LEN + len(plain)] = plain
    return bytes(buf[: agent.seal_in_place(buf, 0, len(plain), piv, rid)])


def _flips(kind, body):
    """Every single-bit change of kind || body: (kind, body) with one bit flipped."""
    content = bytes([kind]) + bytes(body)
    for bit in range(len(content) * 8):
        bad = bytearray(content)
        bad[bit // 8] ^= 1 << (bit % 8)
        yield bad[0], bytes(bad[1:])


# --- handshake ---------------------------------------------------------------------------------
@pytest.mark.parametrize("suite", BOTH_SUITES)
def test_handshake_and_a_round_trip_in_both_suites(suite):
    agent, client = _connect(suite)
    assert client.established and agent.established
    assert client.suite == agent.suite == suite and agent.principal == "ServerA"
    assert client.kind == agent.kind == (P.KIND_SEALED if suite == P.SUITE_CCM else P.KIND_SIGNED)
    for rid in (7, 8, 1 << 29):
        kind, body, piv = _request(client, rid, P.OP_GET, {P.K_URI: "./DevInfo/DevId"})
        assert kind == client.kind
        plain, agent_piv = agent.open(kind, body)
        assert cbor2.loads(plain) == {P.K_ID: rid, P.K_OP: P.OP_GET, P.K_URI: "./DevInfo/DevId"}
        assert agent_piv == piv
        reply = _reply(agent, piv, rid)
        assert cbor2.loads(client.open(kind, reply, rid)) == {P.K_ID: rid, P.K_STATUS: 200}
    assert agent.guard.rejected == 0


@pytest.mark.parametrize("suite", BOTH_SUITES)
def test_frames_are_laid_out_as_the_spec_says(suite):
    agent, client = _connect(suite)
    message = cbor2.dumps({P.K_ID: 1, P.K_OP: P.OP_INFO})
    for seq in range(3):
        kind, body, piv = client.seal(message, 1)
        assert body[:4] == seq.to_bytes(4, "big") and piv == bytes([seq])
        assert len(body) == 4 + len(message) + 8
        if suite == P.SUITE_HMAC:
            assert body[4:-8] == message  # integrity only: the plaintext is on the wire
        else:
            assert message not in body
        assert agent.open(kind, body)[0] == message


def test_partial_iv_is_the_shortest_big_endian_string():
    assert [S.partial_iv(n) for n in (0, 1, 255, 256, P.SEQ_MAX)] == [
        b"\x00", b"\x01", b"\xff", b"\x01\x00", b"\x3f\xff\xff\xff"]
    for n in (0, 1, 255, 256, 65535, 65536, P.SEQ_MAX):
        assert S.partial_iv(n) == agent_secure._piv(n)


def test_wrong_key_fails_the_devices_proof_here_and_401_at_hs3_there():
    guard = _guard()
    agent = Channel(guard, True)
    client = ClientChannel("ServerA", WRONG)
    hs1 = client.hs1()
    hs2 = agent.handshake(hs1)
    with pytest.raises(HandshakeError) as err:
        client.on_hs2(hs2)  # the device did not prove *our* key: we stop here
    assert err.value.status == P.S_UNAUTHORIZED and isinstance(err.value, DeviceError)
    assert not client.established
    answer = agent.handshake(err.value.hs3)  # the HS3 a client with this key would send
    assert cbor2.loads(answer) == [P.HS_ERR, P.S_UNAUTHORIZED, "handshake failed"]
    assert not agent.established and guard.pending == []
    # and a client that pressed on anyway could not seal
    with pytest.raises(SecurityError) as err:
        client.seal(b"\xa0", 1)
    assert err.value.status == P.S_UNAUTHORIZED


def test_an_unknown_principal_is_indistinguishable_from_a_wrong_key():
    """Same name, same wrong key; one device holds a key for the name, the other none."""
    seen = []
    for keys in ({"ServerA": KEY_A}, {"Other": KEY_A}):
        agent = Channel(Guard(keys), True)
        client = ClientChannel("ServerA", WRONG)
        hs2 = agent.handshake(client.hs1())
        msg = cbor2.loads(hs2)
        with pytest.raises(HandshakeError) as err:
            client.on_hs2(hs2)
        hs4 = agent.handshake(err.value.hs3)
        seen.append((len(hs2), [type(x) for x in msg], msg[0], msg[2], len(msg[1]), len(msg[3]),
                     err.value.status, str(err.value), hs4))
    assert seen[0] == seen[1]
    assert seen[0][-1] == cbor2.dumps([P.HS_ERR, P.S_UNAUTHORIZED, "handshake failed"])


def _first_answer(guard, principal, suites=(P.SUITE_CCM,)):
    """What a fresh link learns from HS1 (and, if it gets that far, from HS3) as principal,
    holding a wrong key: the ERR it ends with."""
    agent = Channel(guard, True)
    client = ClientChannel(principal, WRONG, suites)
    hs2 = agent.handshake(client.hs1())
    if cbor2.loads(hs2)[0] != P.HS2:
        return cbor2.loads(hs2)
    with pytest.raises(HandshakeError) as err:
        client.on_hs2(hs2)
    return cbor2.loads(agent.handshake(err.value.hs3))


def test_backoff_does_not_tell_which_principals_exist():
    guard = _guard()
    _first_answer(guard, "Nobody0")  # two failures (the back-off starts at the second)
    _first_answer(guard, "Nobody1")  # under unknown names
    assert _first_answer(guard, "Nobody2") == _first_answer(guard, "ServerA")


def test_suite_policy_does_not_tell_which_principals_exist():
    guard = _guard(integrity_only=["GW1"])
    assert (_first_answer(guard, "Nobody", (P.SUITE_HMAC,))
            == _first_answer(_guard(integrity_only=["GW1"]), "GW1", (P.SUITE_HMAC,)))


def test_a_tampered_hs2_is_refused_and_no_session_starts():
    agent = Channel(_guard(), True)
    client = ClientChannel("ServerA", KEY_A)
    hs2 = cbor2.loads(agent.handshake(client.hs1()))
    hs2[1] = bytes([hs2[1][0] ^ 1]) + hs2[1][1:]  # the device's nonce, changed on the way
    with pytest.raises(HandshakeError) as err:
        client.on_hs2(cbor2.dumps(hs2))
    assert err.value.status == P.S_UNAUTHORIZED and not client.established


def test_a_suite_not_offered_is_refused_even_with_a_good_proof():
    client = ClientChannel("ServerA", KEY_A, (P.SUITE_CCM,))
    hs1 = client.hs1()
    nonce_d = os.urandom(16)
    hs2 = cbor2.dumps([P.HS2, nonce_d, P.SUITE_HMAC, S.hs2_mac(KEY_A, hs1, nonce_d, P.SUITE_HMAC)])
    with pytest.raises(HandshakeError) as err:
        client.on_hs2(hs2)
    assert err.value.status == P.S_FORBIDDEN


def test_device_errors_keep_their_status_and_message():
    guard = _guard(integrity_only=[])
    client = ClientChannel("ServerA", KEY_A, (P.SUITE_HMAC,))  # policy allows no such suite
    channel = Channel(guard, True)
    hs3 = client.on_hs2(channel.handshake(client.hs1()))  # refused only once the key is proven
    with pytest.raises(HandshakeError) as err:
        client.on_hs4(channel.handshake(hs3))
    assert err.value.status == P.S_FORBIDDEN and "integrity-only is not allowed" in str(err.value)
    # after a failure, the next HS1 from that source meets the backoff: 403 "busy", no time
    agent = Channel(guard, True, "one source")
    for _ in range(2):  # the second failure starts the back-off
        client = ClientChannel("ServerA", WRONG)
        with pytest.raises(HandshakeError) as err:
            client.on_hs2(agent.handshake(client.hs1()))
        agent.handshake(err.value.hs3)
    client = ClientChannel("ServerA", KEY_A)
    with pytest.raises(HandshakeError) as err:
        client.on_hs2(agent.handshake(client.hs1()))
    assert err.value.status == P.S_FORBIDDEN and "busy" in str(err.value) and " ms" not in str(err.value)


def test_handshake_messages_out_of_order_or_malformed_are_400():
    client = ClientChannel("ServerA", KEY_A)
    with pytest.raises(HandshakeError) as err:
        client.on_hs2(b"\x80")  # before HS1
    assert err.value.status == P.S_BAD_REQUEST
    client.hs1()
    for bad in (b"", b"\xff", cbor2.dumps([2, b"short", 10, b"x" * 32]), cbor2.dumps([4, 200]),
                cbor2.dumps({"2": 1}), cbor2.dumps([2, os.urandom(16), True, os.urandom(32)])):
        with pytest.raises(HandshakeError) as err:
            client.on_hs2(bad)
        assert err.value.status == P.S_BAD_REQUEST, bad
    with pytest.raises(HandshakeError):
        client.on_hs4(cbor2.dumps([P.HS4, 200]))  # HS4 before any HS3


def test_client_arguments_are_checked():
    for principal, key, suites in (("", KEY_A, [10]), ("A", b"short", [10]), ("A", KEY_A, []),
                                   ("A", KEY_A, [1]), ("x" * 65, KEY_A, [10])):
        with pytest.raises(ValueError):
            ClientChannel(principal, key, suites)
    assert "11" * 4 not in repr(ClientChannel("A", b"\x11" * 16))


def test_a_new_hs1_ends_the_clients_session_and_the_agents_only_once_the_new_one_is_proven():
    """An HS1 is unauthenticated: on the agent it ends nothing until its HS3 proves the key."""
    agent, client = _connect()
    hs1 = client.hs1()
    assert not client.established
    hs2 = agent.handshake(hs1)
    assert agent.established  # an injected HS1 cannot end the session
    client.on_hs4(agent.handshake(client.on_hs2(hs2)))
    assert agent.established and client.established


# --- tampering ---------------------------------------------------------------------------------
@pytest.mark.parametrize("suite", BOTH_SUITES)
def test_every_flipped_bit_of_a_request_is_refused_by_the_agent(suite):
    agent, client = _connect(suite)
    kind, body, piv = _request(client, 3)
    count = 0
    for bad_kind, bad_body in _flips(kind, body):
        assert agent.open(bad_kind, bad_body) is None, (bad_kind, bad_body.hex())
        count += 1
    assert count == (1 + len(body)) * 8 and agent.guard.rejected == count
    assert agent.open(kind, body)[1] == piv  # the good frame still opens: nothing was burnt


@pytest.mark.parametrize("suite", BOTH_SUITES)
def test_every_flipped_bit_of_a_response_is_refused_by_the_client(suite):
    agent, client = _connect(suite)
    kind, body, piv = _request(client, 3)
    agent.open(kind, body)
    reply = _reply(agent, piv, 3)
    reasons = set()
    for bad_kind, bad_body in _flips(kind, reply):
        with pytest.raises(FrameRejected) as err:
            client.open(bad_kind, bad_body, 3)
        assert err.value.status == P.S_UNAUTHORIZED
        reasons.add(err.value.reason)
    assert reasons == {"kind", "seq", "tag"}  # kind byte, a seq bit set high... or low, the rest
    assert cbor2.loads(client.open(kind, reply, 3))[P.K_STATUS] == 200


def test_a_flipped_bit_on_the_wire_never_reaches_the_channel_as_a_good_frame():
    agent, client = _connect()
    kind, body, piv = _request(client, 3)
    encoded = wire.encode_frame(kind, body)
    reader = wire.FrameReader()
    for bit in range((len(encoded) - 1) * 8):
        bad = bytearray(encoded)
        bad[bit // 8] ^= 1 << (bit % 8)
        for got_kind, got_body in reader.feed(bytes(bad) + b"\x00"):
            assert agent.open(got_kind, got_body) is None
    assert agent.open(kind, body) is not None


@pytest.mark.parametrize("suite", BOTH_SUITES)
def test_truncated_tags_are_refused_both_ways(suite):
    agent, client = _connect(suite)
    kind, body, piv = _request(client, 4)
    for cut in range(1, 9):
        assert agent.open(kind, body[:-cut]) is None
    assert agent.open(kind, body[:7]) is None
    assert agent.open(kind, body) is not None
    reply = _reply(agent, piv, 4)
    for cut in range(1, len(reply) + 1):
        with pytest.raises(FrameRejected):
            client.open(kind, reply[:-cut], 4)
    assert client.open(kind, reply, 4) is not None


def test_a_replayed_request_is_refused_in_both_modes():
    for strict in (True, False):
        agent, client = _connect(strict=strict)
        kind, body, _ = _request(client, 1)
        assert agent.open(kind, body) is not None
        assert agent.open(kind, body) is None
        later = _request(client, 2)
        assert agent.open(later[0], later[1]) is not None
        assert agent.open(kind, body) is None


def test_reordered_requests_are_refused_over_tcp_and_taken_once_in_the_serial_window():
    agent, client = _connect(strict=True)
    first, second = _request(client, 1), _request(client, 2)
    assert agent.open(second[0], second[1]) is not None
    assert agent.open(first[0], first[1]) is None
    agent, client = _connect(strict=False)
    frames = [_request(client, rid) for rid in range(P.REPLAY_WINDOW + 2)]
    last = frames[-1]
    assert agent.open(last[0], last[1]) is not None
    assert agent.open(frames[-2][0], frames[-2][1]) is not None  # inside the window: once
    assert agent.open(frames[-2][0], frames[-2][1]) is None
    assert agent.open(frames[1][0], frames[1][1]) is None  # 32 below the highest: outside


def test_a_replayed_or_reordered_response_is_refused_by_the_client():
    agent, client = _connect()
    kind, body, piv = _request(client, 5)
    agent.open(kind, body)
    early, late = _reply(agent, piv, 5), _reply(agent, piv, 5)  # seq 0 and 1, same request
    assert client.open(kind, late, 5) is not None
    for stale in (early, late):
        with pytest.raises(FrameRejected) as err:
            client.open(kind, stale, 5)
        assert err.value.reason == "seq"


# --- a response is bound to its request -------------------------------------------------------
def test_a_response_for_another_request_is_refused():
    agent, client = _connect()
    a = _request(client, 10)
    b = _request(client, 11)
    agent.open(a[0], a[1])
    agent.open(b[0], b[1])
    for_a = _reply(agent, a[2], 10)
    # presented as the answer to request 11: wrong id and wrong Partial IV
    with pytest.raises(FrameRejected) as err:
        client.open(b[0], for_a, 11)
    assert err.value.reason == "tag"
    # right Partial IV, another request id in the AAD (the agent sealed it for id 99)
    with pytest.raises(FrameRejected):
        client.open(b[0], _reply(agent, b[2], 99), 11)
    # right id, another request's Partial IV
    with pytest.raises(FrameRejected):
        client.open(b[0], _reply(agent, a[2], 11), 11)
    # the genuine answer, even after those, still opens: refusals change nothing
    assert cbor2.loads(client.open(b[0], _reply(agent, b[2], 11), 11))[P.K_ID] == 11
    with pytest.raises(FrameRejected) as err:  # now older than an accepted response
        client.open(a[0], for_a, 10)
    assert err.value.reason == "seq"


def test_a_retry_reseals_the_same_request_and_either_answer_is_taken():
    agent, client = _connect()
    tries = [_request(client, 20) for _ in range(3)]  # the same message, three seqs
    assert len({t[1][:4] for t in tries}) == 3 and len({t[2] for t in tries}) == 3
    assert client.sent_pivs(20) == [t[2] for t in tries]
    plains = {agent.open(t[0], t[1])[0] for t in tries}
    assert len(plains) == 1  # one message
    reply = _reply(agent, tries[0][2], 20)  # the answer to the first try, arriving late
    assert cbor2.loads(client.open(P.KIND_SEALED, reply, 20))[P.K_ID] == 20
    client.forget(20)
    with pytest.raises(FrameRejected):
        client.open(P.KIND_SEALED, _reply(agent, tries[1][2], 20), 20)


def test_the_sequence_stops_at_2_to_the_30():
    agent, client = _connect()
    client._seq = P.SEQ_MAX
    kind, body, _ = _request(client, 1)
    assert agent.open(kind, body) is not None  # the last seq is still good
    with pytest.raises(SecurityError) as err:
        _request(client, 2)
    assert err.value.status == P.S_UNAUTHORIZED and "handshake again" in str(err.value)


def test_protected_frames_without_a_session_are_refused():
    client = ClientChannel("ServerA", KEY_A)
    with pytest.raises(FrameRejected) as err:
        client.open(P.KIND_SEALED, b"\x00" * 20, 1)
    assert err.value.reason == "no session"
    agent = Channel(_guard(), True)
    _other_agent, other = _connect()
    kind, body, _ = _request(other, 1)
    assert agent.open(kind, body) is None  # a frame of another session, on a fresh link


# --- the two implementations agree on the primitives --------------------------------------------
def test_key_derivation_nonce_and_aad_agree_with_the_agents_code():
    for _ in range(20):
        secret = os.urandom(16 if _ % 2 else 32)
        salt = os.urandom(32)
        ctx = os.urandom(_ % 9)
        for alg, key_len in ((P.SUITE_CCM, 16), (P.SUITE_HMAC, 32)):
            host = S.derive(secret, salt, b"\x00", b"\x01", ctx, alg, key_len)
            agent = agent_crypto.derive(secret, salt, b"\x00", b"\x01", ctx, alg, key_len, P.IV_LEN)
            assert host == tuple(agent)
        iv = os.urandom(13)
        for sid in (b"", b"\x00", b"\x01", os.urandom(7)):
            for piv in (b"\x00", b"\x14", os.urandom(4), os.urandom(5)):
                assert S.nonce(iv, sid, piv) == agent_crypto.nonce(iv, sid, piv)
        piv, options = os.urandom(3), bytes([P.KIND_SEALED]) + cbor2.dumps(_ * 1000)
        assert S.aad(P.SUITE_CCM, piv, options) == agent_secure._aad(P.SUITE_CCM, piv, options)


# RFC 8613 Appendix C, transcribed from the RFC for this file. Master Secret 0x0102..10,
# AES-CCM-16-64-128. Per context: Master Salt, ID Context, client Sender ID, client Recipient
# ID; the client's Sender Key, Recipient Key, Common IV; its sender and recipient nonces for
# Partial IV 0; and the info of its Sender Key.
MASTER_SECRET = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
RFC8613_C = {
    "C.1": ("9e7ca92223786340", None, "", "01",
            "f0910ed7295e6ad4b54fc793154302ff", "ffb14e093c94c9cac9471648b4f98710",
            "4622d4dd6d944168eefb54987c", "4622d4dd6d944168eefb54987c", "4722d4dd6d944169eefb54987c",
            "8540f60a634b657910"),
    "C.2": (None, None, "00", "01",
            "321b26943253c7ffb6003b0b64d74041", "e57b5635815177cd679ab4bcec9d7dda",
            "be35ae297d2dace910c52e99f9", "bf35ae297d2dace910c52e99f9", "bf35ae297d2dace810c52e99f9",
            "854100f60a634b657910"),
    "C.3": ("9e7ca92223786340", "37cbf3210017a2d3", "", "01",
            "af2a1300a5e95788b356336eeecd2b92", "e39a0c7c77b43f03b4b39ab9a268699f",
            "2ca58fb85ff1b81c0b7181b85e", "2ca58fb85ff1b81c0b7181b85e", "2da58fb85ff1b81d0b7181b85e",
            "85404837cbf3210017a2d30a634b657910"),
}
# C.4 to C.8: context, who protects ("client"/"server"), the ID of the Partial IV's owner and
# the Partial IV (the nonce), the request's kid (AAD; its Partial IV is 20 throughout), the
# nonce, plaintext, ciphertext with its tag.
HELLO_WORLD = "45ff48656c6c6f20576f726c6421"
RFC8613_MESSAGES = {
    "C.4": ("C.1", "client", "", 20, "", "4622d4dd6d944168eefb549868", "01b3747631",
            "612f1092f1776f1c1668b3825e"),
    "C.5": ("C.2", "client", "00", 20, "00", "bf35ae297d2dace910c52e99ed", "01b3747631",
            "4ed339a5a379b0b8bc731fffb0"),
    "C.6": ("C.3", "client", "", 20, "", "2ca58fb85ff1b81c0b7181b84a", "01b3747631",
            "72cd7273fd331ac45cffbe55c3"),
    "C.7": ("C.1", "server", "", 20, "", "4622d4dd6d944168eefb549868", HELLO_WORLD,
            "dbaad1e9a7e7b2a813d3c31524378303cdafae119106"),
    "C.8": ("C.1", "server", "01", 0, "", "4722d4dd6d944169eefb54987c", HELLO_WORLD,
            "4d4c13669384b67354b2b6175ff4b8658c666a6cf88e"),
}


def _h(text):
    return None if text is None else bytes.fromhex(text)


def _context(name, side="client"):
    salt, ctx, sid, rid = (_h(x) for x in RFC8613_C[name][:4])
    if side == "server":
        sid, rid = rid, sid
    return S.derive(MASTER_SECRET, salt, sid, rid, ctx, P.SUITE_CCM, 16)


@pytest.mark.parametrize("name", sorted(RFC8613_C))
def test_rfc8613_appendix_c_key_derivation(name):
    salt, ctx, sid, rid, skey, rkey, iv, snonce, rnonce, info = RFC8613_C[name]
    assert _context(name) == (_h(skey), _h(rkey), _h(iv))
    assert _context(name, "server") == (_h(rkey), _h(skey), _h(iv))
    assert cbor2.dumps([_h(sid), _h(ctx), P.SUITE_CCM, "Key", 16]) == _h(info)
    assert S.nonce(_h(iv), _h(sid), S.partial_iv(0)) == _h(snonce)
    assert S.nonce(_h(iv), _h(rid), S.partial_iv(0)) == _h(rnonce)


@pytest.mark.parametrize("name", sorted(RFC8613_MESSAGES))
def test_rfc8613_appendix_c_protected_messages(name):
    ctx, side, id_piv, piv, kid, want_nonce, plain, want = RFC8613_MESSAGES[name]
    client_send, client_recv, iv = _context(ctx)
    key = client_send if side == "client" else client_recv
    n = S.nonce(iv, _h(id_piv), S.partial_iv(piv))
    assert n == _h(want_nonce)
    a = S.aad(P.SUITE_CCM, S.partial_iv(20), b"", request_kid=_h(kid))
    if name == "C.4":
        assert a == _h("8368456e63727970743040488501810a40411440")
    assert AESCCM(key, 8).encrypt(n, _h(plain), a) == _h(want)
    # and the agent's AES-CCM, given the same inputs, agrees
    from dmagent.agent import ccm, hal

    assert bytes(ccm.encrypt(hal.aes_block(key), n, a, _h(plain), 8)) == _h(want)


# --- Device over an in-process agent (App and Link, no server) ----------------------------------
CONFIG = {
    "device": {"devid": "urn:dmagent:hostsec"},
    "accounts": [{"server_id": "ServerA"}, {"server_id": "ServerB"}],
    "nodes": [{"uri": "./OnlyB", "format": "node", "acl": "Add=ServerB&Get=ServerB"}],
    "security": {"gateways": {"GW1": ["ServerB"]}, "integrity_only": ["GW1"],
                 "confidential": ["./DMAcc"]},
}


class LoopTransport:
    """A Device transport straight into an agent Link; hooks to lose or inject replies."""

    def __init__(self, app, stream=True):
        self.link = app.new_link("loop", stream)
        self.inbox = bytearray()
        self.sent = []
        self.lose = 0  # replies to throw away
        self.inject = []  # frames delivered before the next reply

    def write(self, data):
        self.sent.append(bytes(data).lstrip(b"\x00"))  # the frame, without the 0x00 before it
        for reply in self.link.receive(bytes(data)):
            reply = bytes(reply)
            if self.lose:
                self.lose -= 1
                continue
            for extra in self.inject:
                self.inbox += extra
            self.inject = []
            self.inbox += reply

    def read(self, timeout):
        if not self.inbox:
            time.sleep(min(timeout, 0.01))
            return b""
        data, self.inbox = bytes(self.inbox), bytearray()
        return data

    def close(self):
        self.link.close()


@pytest.fixture
def app():
    apps = []

    def make():
        apps.append(App(CONFIG, None, False, lambda msg: None, {"ServerA": KEY_A, "GW1": KEY_GW}))
        return apps[-1]

    yield make


def _device(app, **kw):
    kw.setdefault("principal", "ServerA")
    kw.setdefault("key", KEY_A)
    transport = LoopTransport(app)
    return Device.over(transport, timeout=0.3, retries=2, **kw), transport


def test_device_handshakes_then_seals_every_request(app):
    a = app()
    dev, loop = _device(a)
    with dev:
        assert dev.channel.established and dev.handshake_bytes > 0
        info = dev.info()
        assert info["principal"] == "ServerA" and info["suite"] == P.SUITE_CCM
        dev.add("./HostSec", interior=True)
        assert dev.check("./HostSec", "ServerA", "Delete") == (True, "./HostSec")  # ServerA made it
        dev.delete("./HostSec")
        kinds = [wire.decode_frame(frame_[:-1])[0] for frame_ in loop.sent]
        assert kinds[:2] == [P.KIND_HANDSHAKE] * 2 and set(kinds[2:]) == {P.KIND_SEALED}
        assert not any(b"HostSec" in f for f in loop.sent)


def test_device_retry_reseals_the_same_request_under_a_new_seq_and_runs_it_once(app):
    a = app()
    dev, loop = _device(a)
    with dev:
        session = loop.link
        before = session.executed
        loop.lose = 1  # the answer to the first try is lost
        sent = len(loop.sent)
        dev.add("./Once", interior=True)
        tries = [wire.decode_frame(f[:-1]) for f in loop.sent[sent:]]
        assert len(tries) == 2 and tries[0][1][:4] != tries[1][1][:4]  # two seqs
        assert session.executed == before + 1  # the retry was answered from the cache
        with pytest.raises(DeviceError) as err:
            dev.add("./Once", interior=True)
        assert err.value.status == P.S_EXISTS


def test_device_ignores_forged_replayed_and_misdirected_responses(app):
    a = app()
    dev, loop = _device(a)
    with dev:
        dev.info()
        agent_frames = []
        original_receive = loop.link.receive

        def recording(data, end=None):
            for reply in original_receive(data, end):
                agent_frames.append(bytes(reply))
                yield reply

        loop.link.receive = recording
        dev.info()
        replayed = agent_frames[-1]
        kind, body = wire.decode_frame(replayed[:-1])
        forged = (int.from_bytes(body[:4], "big") + 100).to_bytes(4, "big") + body[4:]
        loop.inject = [replayed, wire.encode_frame(kind, forged), loop.sent[-1]]
        assert dev.get("./DevInfo/DevId") == "urn:dmagent:hostsec"
        # the replayed answer to info (old seq), the forged one (tag), our own request echoed
        assert dev.rejected == 3


def test_device_with_a_wrong_key_gets_401_and_frees_the_devices_slot(app):
    a = app()
    with pytest.raises(DeviceError) as err:
        _device(a, key=WRONG)
    assert err.value.status == P.S_UNAUTHORIZED and "handshake as ServerA" in str(err.value)
    assert a.guard.pending == []


def test_device_as_gateway_puts_the_server_in_every_request(app):
    a = app()
    dev, loop = _device(a, principal="GW1", key=KEY_GW, for_server="ServerB",
                        suites=(P.SUITE_HMAC,))
    with dev:
        dev.add("./OnlyB/X", interior=True)  # ServerB's right, not GW1's
        kind, body = wire.decode_frame(loop.sent[-1][:-1])
        assert kind == P.KIND_SIGNED and cbor2.loads(body[4:-8])[P.K_FOR] == "ServerB"
        with pytest.raises(DeviceError) as err:
            dev.get("./DMAcc")  # confidential subtree over an integrity-only session
        assert err.value.status == P.S_FORBIDDEN
    dev, _ = _device(a, principal="GW1", key=KEY_GW, for_server="ServerA", suites=(P.SUITE_HMAC,))
    with dev, pytest.raises(DeviceError) as err:
        dev.info()
    assert err.value.status == P.S_FORBIDDEN


def test_device_open_checks_its_arguments(app, tmp_path):
    a = app()
    with pytest.raises(ValueError):
        Device.over(LoopTransport(a), key=KEY_A)  # bytes without a principal
    with pytest.raises(ValueError):
        Device.over(LoopTransport(a), for_server="ServerB")  # proxy mode needs a session
    from dmagent.host_tools.client import keys

    path = tmp_path / "a.key"
    keys.write_key_file("ServerA", KEY_A, path)
    with pytest.raises(ValueError):
        Device.over(LoopTransport(a), key=path, principal="GW1")
    with Device.over(LoopTransport(a), key=path, timeout=0.3) as dev:
        assert dev.info()["principal"] == "ServerA"


def test_device_without_keys_on_the_agent_gets_406(app):
    config = dict(CONFIG)
    del config["security"]
    bare = App(config, None, False, lambda msg: None, None)
    with pytest.raises(DeviceError) as err:
        Device.over(LoopTransport(bare), principal="ServerA", key=KEY_A, timeout=0.3)
    assert err.value.status == P.S_NOT_SUPPORTED


def test_device_that_never_answers_times_out():
    class Silent:
        def write(self, data):
            pass

        def read(self, timeout):
            time.sleep(min(timeout, 0.01))
            return b""

        def close(self):
            pass

    with pytest.raises(DeviceTimeout):
        Device.over(Silent(), principal="ServerA", key=KEY_A, timeout=0.05, retries=1)
