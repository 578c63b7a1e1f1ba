"""The session layer's holes (issue 10 points 4-9, issue 14 points 2 and 6), each through a
real `dmagent serve` process on CPython and on the device runtime at 110k.

Attackers come from another loopback address (127.0.0.2...): the agent sees another
source, as it would a host elsewhere on the network.
"""

import json
import socket
import threading
import time

import cbor2
import pytest

from dmagent.agent import proto as P
from dmagent.agent.store import Store
from dmagent.host_tools.client import wire
from dmagent.host_tools.client.device import Device, DeviceError
from dmagent.host_tools.client.secure import ClientChannel, HandshakeError
from dmagent.host_tools.client.transport import LinkError, TcpTransport
from tests.host.agents import DEMO_CONFIG, start_agent

KEY_A = "11" * 16
KEY_B = "44" * 16
KEY_GW = "22" * 32
DEVICE_HEAP = "120k"  # with three keys and a gateway: what this layer needs (docs/memory.md)


class SourcedTcp(TcpTransport):
    """A TCP transport from a chosen loopback source address."""

    def __init__(self, url, source):
        host, port = url[len("tcp://"):].rsplit(":", 1)
        self.where = url
        self.sock = socket.create_connection((host, int(port)), timeout=5, source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _key_file(folder, principal, hex_key):
    path = folder / ("%s.key" % principal)
    path.write_text(json.dumps({"principal": principal, "key": hex_key}))
    path.chmod(0o600)
    return path


def _config(links=None):
    config = json.loads(DEMO_CONFIG.read_text())
    config["security"] = {"gateways": {"GW1": ["ServerA", "ServerB"]}, "integrity_only": ["GW1"]}
    if links:
        config["links"] = links
    return config


def _start(tmp, runtime, links=None, pty=False):
    keys = tmp / "keys"
    keys.mkdir(exist_ok=True)
    _key_file(keys, "ServerA", KEY_A)
    _key_file(keys, "ServerB", KEY_B)
    _key_file(keys, "GW1", KEY_GW)
    return start_agent(tmp, runtime=runtime, tcp=True, pty=pty, config=_config(links),
                       insecure=False, heap=DEVICE_HEAP, extra=["--keys", str(keys)])


@pytest.fixture(params=["cpython", "micropython"])
def runtime(request):
    return request.param


@pytest.fixture
def agent(runtime, tmp_path):
    running = _start(tmp_path, runtime)
    running.runtime = runtime
    running.tmp = tmp_path
    yield running
    running.stop()


def _open(url, key=KEY_A, principal="ServerA", source=None, **kw):
    """A Device with a key; from source (another loopback address) if given."""
    kw.setdefault("retries", 1)
    if source is None:
        return Device.open(url, principal=principal, key=bytes.fromhex(key), **kw)
    return Device.over(SourcedTcp(url, source), principal=principal, key=bytes.fromhex(key), **kw)


def _journal_values(state, uri):
    """Every value the journal and snapshot recorded for uri: a write run twice shows twice."""
    snapshot, payloads = Store(str(state)).load()
    found = []
    for payload in payloads:
        for record in cbor2.loads(payload):
            if record[0] == "val" and record[1] == uri:
                found.append(record[2])
            if record[0] == "put" and record[1] == uri:
                found.append(record[2][0] if isinstance(record[2], list) else record[2])
    return found


# --- 10.4: back-off costs the attacker, not the principal -------------------------------
def _failing_handshake(url, source, principal="ServerA"):
    try:
        dev = _open(url, key="33" * 16, principal=principal, source=source, retries=0, timeout=3)
    except DeviceError as exc:  # a HandshakeError, or the device runtime's "busy" link refusal
        return exc
    dev.close()
    raise AssertionError("a wrong key was accepted")


def test_failed_handshakes_from_another_source_never_lock_the_principal_out(agent):
    """Rule 10.4: a flood of wrong-key handshakes naming ServerA, from another source, does
    not refuse the real ServerA; the attacker is told nothing about when to try again."""
    stop = threading.Event()
    refusals = []

    def attack():
        while not stop.is_set():
            try:
                refusals.append(_failing_handshake(agent.url, "127.0.0.2"))
            except (LinkError, OSError):
                pass

    thread = threading.Thread(target=attack)
    thread.start()
    try:
        time.sleep(1.5)
        good = 0
        for _ in range(10):
            try:
                with _open(agent.url, timeout=5, retries=3) as dev:  # busy (420) is retried
                    dev.info()
                    good += 1
            except DeviceError:
                pass
    finally:
        stop.set()
        thread.join()
    print("good handshakes during the attack: %d of 10; attacker tries: %d" % (good, len(refusals)))
    # None is refused for the attacker's failures. The device runtime has heap for one keyed
    # TCP link: a flood of connects from elsewhere holds it part of the time ("busy", 420,
    # asked again 3 times), the share the report gives.
    assert good == 10 if agent.runtime == "cpython" else good >= 7
    assert len(refusals) >= 8
    for exc in refusals:
        assert exc.status in (P.S_UNAUTHORIZED, P.S_FORBIDDEN, P.S_DEVICE_FULL)
        assert "retry after" not in exc.message and " ms" not in exc.message


def test_stalled_handshakes_from_four_sources_do_not_block_a_fifth(agent):
    """Rule 10.4: four links that each send an HS1 and stall do not hold every pending slot."""
    stalled = []
    for i in range(4):
        sock = socket.create_connection(agent.url[6:].rsplit(":", 1), timeout=5,
                                        source_address=("127.0.0.%d" % (2 + i), 0))
        hs1 = ClientChannel("ServerA", bytes.fromhex(KEY_A)).hs1()
        sock.sendall(wire.encode_frame(P.KIND_HANDSHAKE, hs1))
        stalled.append(sock)
    time.sleep(1.5)  # the stalled slots are past their grace: a new handshake may take one
    try:
        for sock in stalled:
            sock.settimeout(5)
            assert sock.recv(4096)  # each got its HS2 (or, past the device's links, a 420)
        start = time.monotonic()
        # The device runtime holds two links: the one kept for a principal frees in 5 s.
        with _open(agent.url, timeout=5, retries=8) as dev:
            assert dev.info()["principal"] == "ServerA"
        print("a fifth handshake succeeded after %.1f s" % (time.monotonic() - start))
    finally:
        for sock in stalled:
            sock.close()


# --- 10.6 + 14.2: the reply cache ------------------------------------------------------------
def test_plain_hello_does_not_clear_a_sealed_sessions_replies(agent):
    """Rule 10.6: nothing unauthenticated touches an authenticated session's state."""
    with _open(agent.url) as dev:
        rid = 77000
        dev.request(P.OP_ADD, {P.K_URI: "./HelloProbe", P.K_FORMAT: "node"}, request_id=rid)
        dev.transport.write(wire.encode_message({P.K_ID: 1, P.K_OP: P.OP_HELLO}))
        time.sleep(0.3)
        again = dev.request(P.OP_ADD, {P.K_URI: "./HelloProbe", P.K_FORMAT: "node"},
                            request_id=rid, check=False)
        assert again[P.K_STATUS] == P.S_OK  # the cached answer, not 418 from a second run


def test_a_gateway_gets_each_servers_own_decision_for_the_same_request_id(agent):
    """Rule 10.6: the cache is keyed by who spoke, `for` included."""
    with _open(agent.url) as owner:
        owner.add("./GwProbe", interior=True)
        owner.set_acl("./GwProbe", "Add=ServerA&Get=*&Replace=ServerA&Delete=ServerA")
    with _open(agent.url, key=KEY_GW, principal="GW1", for_server="ServerA",
               suites=(P.SUITE_HMAC,)) as gw:
        rid = 88000
        gw.request(P.OP_ADD, {P.K_URI: "./GwProbe/X", P.K_VALUE: 1}, request_id=rid)
        gw.for_server = "ServerB"
        reply = gw.request(P.OP_ADD, {P.K_URI: "./GwProbe/X", P.K_VALUE: 1}, request_id=rid,
                           check=False)
        assert reply[P.K_STATUS] in (P.S_FORBIDDEN, P.S_PERMISSION_DENIED, P.S_EXISTS)
        assert reply[P.K_STATUS] != P.S_OK


class DroppingProxy:
    """Forwards TCP both ways; once armed, it forwards the client's next bytes, throws the
    agent's answer away and cuts both connections (the answer lost with its connection)."""

    def __init__(self, target):
        self.target = target[6:].rsplit(":", 1)
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.url = "tcp://127.0.0.1:%d" % self.server.getsockname()[1]
        self.armed = False
        self.dropped = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection((self.target[0], int(self.target[1])))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src, dst, from_agent):
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if from_agent and self.armed and data[:1] != b"\x00":
                    self.armed = False
                    self.dropped += 1
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.server.close()


def test_a_write_whose_answer_is_lost_with_its_connection_runs_exactly_once(agent):
    """Rule 14.2: retried on a new connection, in a new session, after 10 other requests and
    after a restart of the agent, the write is answered from the reply record: the journal
    holds it once."""
    proxy = DroppingProxy(agent.url)
    try:
        dev = Device.open(proxy.url, key=bytes.fromhex(KEY_A), principal="ServerA", retries=2)
        dev.add("./Once", interior=True)
        dev.set_acl("./Once", "Add=ServerA&Get=*&Replace=ServerA&Delete=ServerA")
        dev.add("./Once/N", 0)
        proxy.armed = True
        rid = dev.peek_request_id()
        dev.replace("./Once/N", 7)  # the answer is lost; Device reconnects and retries
        assert proxy.dropped == 1 and dev.reconnects == 1
        for i in range(10):  # other requests, writes among them
            dev.replace("./Once/N", 100 + i) if i % 2 else dev.get("./Once/N")
        token = dev.token
        dev.close()
        # a new session, a new connection, the same token and request id
        with Device.open(agent.url, key=bytes.fromhex(KEY_A), principal="ServerA", token=token) as again:
            reply = again.request(P.OP_REPLACE, {P.K_URI: "./Once/N", P.K_VALUE: 7}, request_id=rid)
            assert reply[P.K_STATUS] == P.S_OK
            assert again.get("./Once/N") == 109  # the retry did not run: 7 is not back
    finally:
        proxy.close()
    agent.stop()
    assert _journal_values(agent.tmp / "state", "./Once/N").count(7) == 1


def test_write_replies_survive_a_restart(runtime, tmp_path):
    """Rule 14.2: the reply record is on flash with the write: a retry after a restart of the
    agent is still answered from it."""
    agent = _start(tmp_path, runtime)
    try:
        with _open(agent.url) as dev:
            dev.add("./Boot", interior=True)
            rid = dev.peek_request_id()
            dev.add("./Boot/X", 1)
            token = dev.token
    finally:
        agent.stop()
    agent = _start(tmp_path, runtime)
    try:
        with _open(agent.url, token=token) as dev:
            reply = dev.request(P.OP_ADD, {P.K_URI: "./Boot/X", P.K_VALUE: 1}, request_id=rid,
                                check=False)
            assert reply[P.K_STATUS] == P.S_OK  # not 418: it did not run again
    finally:
        agent.stop()


# --- 10.9: HS4 carries a MAC over the transcript ---------------------------------------------
def test_hs4_is_bound_to_the_handshake(agent):
    sock = socket.create_connection(agent.url[6:].rsplit(":", 1), timeout=5)
    reader = wire.FrameReader()

    def step(body):
        sock.sendall(wire.encode_frame(P.KIND_HANDSHAKE, body))
        while True:
            for kind, reply in reader.feed(sock.recv(4096)):
                if kind == P.KIND_HANDSHAKE:
                    return bytes(reply)

    try:
        ch = ClientChannel("ServerA", bytes.fromhex(KEY_A))
        hs4 = step(ch.on_hs2(step(ch.hs1())))
        assert len(cbor2.loads(hs4)) == 3
        forged = ClientChannel("ServerA", bytes.fromhex(KEY_A))
        forged.on_hs2(step(forged.hs1()))
        with pytest.raises(HandshakeError):
            forged.on_hs4(cbor2.dumps([P.HS4, P.S_OK]))  # an HS4 anyone could send
        with pytest.raises(HandshakeError):
            forged.on_hs4(hs4)  # another handshake's HS4
        ch.on_hs4(hs4)
        assert ch.established
    finally:
        sock.close()


# --- 10.8: links bounded --------------------------------------------------------------------
def _refusal(sock):
    """The status frame a refused connect gets, then the close (b'' from recv, not a reset)."""
    reader = wire.FrameReader()
    sock.settimeout(5)
    got = []
    while True:
        data = sock.recv(4096)
        if not data:
            break
        for kind, body in reader.feed(data):
            got.append(cbor2.loads(bytes(body)))
    return got


def test_a_connect_past_the_per_source_bound_gets_a_status_and_a_close(runtime, tmp_path):
    """Rule 10.8: one address holds at most its share of the links (never all); the connect
    past it is told so (420) and closed, not reset; another address is still served."""
    share = 2 if runtime == "cpython" else 1
    # The device runtime has buffers for one TCP link and makes a second's if its heap has
    # them: with keys at its heap it has not, and the second address is served once the
    # first's silent link is closed (half-open timeout, 3 s here).
    agent = _start(tmp_path, runtime, links={"max": 2 * share, "per_source": share,
                                             "idle_ms": 20000, "half_open_ms": 20000 if share == 2 else 3000})
    socks = []
    try:
        for _ in range(share):
            socks.append(socket.create_connection(agent.url[6:].rsplit(":", 1), timeout=5,
                                                  source_address=("127.0.0.2", 0)))
        time.sleep(0.3)
        extra = socket.create_connection(agent.url[6:].rsplit(":", 1), timeout=5,
                                         source_address=("127.0.0.2", 0))
        socks.append(extra)
        answer = _refusal(extra)
        assert answer and answer[0][P.K_STATUS] == P.S_DEVICE_FULL, answer
        with _open(agent.url, retries=6) as dev:  # another source is still served
            assert dev.info()["principal"] == "ServerA"
    finally:
        for s in socks:
            s.close()
        agent.stop()


def test_an_idle_link_is_closed_and_does_not_refuse_an_authenticated_client(runtime, tmp_path):
    """Rule 10.8: one idle link does not refuse every other TCP client (the device runtime
    at 110k had room for one); a link silent past its half-open timeout is closed."""
    agent = _start(tmp_path, runtime, links={"idle_ms": 30000, "half_open_ms": 1500})
    try:
        idle = socket.create_connection(agent.url[6:].rsplit(":", 1), timeout=5,
                                        source_address=("127.0.0.2", 0))
        time.sleep(0.3)
        start = time.monotonic()
        # On the device runtime a second link needs a 2 KB block its heap seldom has with
        # keys: then the client is told "busy" (420) until the idle link is closed.
        with _open(agent.url, retries=6) as dev:
            assert dev.info()["principal"] == "ServerA"
        print("served after %.1f s beside an idle link" % (time.monotonic() - start))
        idle.settimeout(10)
        start = time.monotonic()
        assert _refusal(idle) == []  # closed, without a word: it never spoke
        assert time.monotonic() - start < 9
    finally:
        agent.stop()


# --- 10.7: an RNG that repeats across boots ------------------------------------------------
def _start_repeating(tmp, runtime):
    """An agent whose RNG repeats after every start (tests/host/repeating_rng.py)."""
    import subprocess
    import sys

    from dmagent.host_tools.runtime import micropython as mpy
    from dmagent.host_tools.runtime.serve import BOARD_MAIN
    from tests.host.agents import ROOT, RunningAgent, free_port

    keys = tmp / "keys"
    keys.mkdir(exist_ok=True)
    _key_file(keys, "ServerA", KEY_A)
    config = tmp / "config.json"
    config.write_text(json.dumps(_config()))
    port = free_port()
    flags = ["--tcp", "127.0.0.1:%d" % port, "--state", str(tmp / "state"), "--config", str(config),
             "--keys", str(keys)]
    log_path = tmp / ("agent-%d.log" % time.monotonic_ns())
    log = open(log_path, "w")
    hook = ROOT / "tests" / "host" / "repeating_rng.py"
    if runtime == "cpython":
        argv = [sys.executable, str(hook), "cpython", "serve", "--runtime", "cpython"] + flags
        proc = subprocess.Popen(argv, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=log, text=True,
                                start_new_session=True, env=dict(__import__("os").environ, PYTHONPATH=str(ROOT)))
        ready = "serving "
        stream = proc.stdout
    else:
        (tmp / "state").mkdir(exist_ok=True)
        # 160k: the hook compiles main.py from source, whose parse needs heap a board never spends
        proc = mpy.spawn(hook, heap="160k", args=[str(BOARD_MAIN)] + flags, cwd=str(ROOT),
                         stdout=log, stderr=subprocess.PIPE, text=True, start_new_session=True)
        ready = "dmagent: ready"
        stream = proc.stderr
    deadline = time.monotonic() + 60
    for line in stream:
        log.write(line) if stream is proc.stderr else None
        if line.startswith(ready) or time.monotonic() > deadline:
            break
    else:
        raise RuntimeError("agent exited:\n" + log_path.read_text())
    if stream is proc.stderr:
        threading.Thread(target=lambda: [log.write(x) for x in stream], daemon=True).start()
    return RunningAgent(proc, ["tcp://127.0.0.1:%d" % port], log_path)


class _Raw:
    """Frames over one TCP connection, by hand: to record a session and to replay it."""

    def __init__(self, url):
        self.sock = socket.create_connection(url[6:].rsplit(":", 1), timeout=5)
        self.reader = wire.FrameReader()

    def send(self, kind, body):
        self.sock.sendall(wire.encode_frame(kind, body))

    def answer(self, timeout=3):
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(4096)
                if not data:
                    return None
                for kind, body in self.reader.feed(data):
                    return kind, bytes(body)
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()


def test_a_recorded_session_cannot_be_replayed_on_a_device_whose_rng_repeats(runtime, tmp_path):
    """Rule 10.7: after a restart the same RNG bytes give another device nonce (the boot
    count is in it): the replayed HS3 fails, the replayed sealed write does not run."""
    agent = _start_repeating(tmp_path, runtime)
    try:
        with _open(agent.url, retries=2) as dev:
            dev.add("./Rp", interior=True)
            dev.set_acl("./Rp", "Add=ServerA&Get=*&Replace=ServerA&Delete=ServerA")
            dev.add("./Rp/N", 0)
    finally:
        agent.stop()
    agent = _start_repeating(tmp_path, runtime)  # recorded: the first handshake of a boot
    try:
        raw = _Raw(agent.url)
        ch = ClientChannel("ServerA", bytes.fromhex(KEY_A))
        hs1 = ch.hs1()
        raw.send(P.KIND_HANDSHAKE, hs1)
        hs2 = raw.answer()[1]
        hs3 = ch.on_hs2(hs2)
        raw.send(P.KIND_HANDSHAKE, hs3)
        ch.on_hs4(raw.answer()[1])
        kind, sealed, _ = ch.seal({P.K_ID: 5, P.K_OP: P.OP_REPLACE, P.K_URI: "./Rp/N", P.K_VALUE: 5})
        raw.send(kind, sealed)
        assert raw.answer() is not None
        raw.close()
        with _open(agent.url, retries=2) as dev:
            dev.replace("./Rp/N", 6)
    finally:
        agent.stop()
    agent = _start_repeating(tmp_path, runtime)  # the same RNG bytes again
    try:
        raw = _Raw(agent.url)
        raw.send(P.KIND_HANDSHAKE, hs1)
        again = raw.answer()[1]
        assert again != hs2  # another device nonce
        raw.send(P.KIND_HANDSHAKE, hs3)
        assert cbor2.loads(raw.answer()[1])[:2] == [P.HS_ERR, P.S_UNAUTHORIZED]
        raw.send(kind, sealed)
        assert raw.answer(timeout=1.5) is None  # no session: dropped
        raw.close()
        with _open(agent.url, retries=2) as dev:
            assert dev.get("./Rp/N") == 6  # the recorded write did not run again
    finally:
        agent.stop()
    assert _journal_values(tmp_path / "state", "./Rp/N").count(5) == 1


# --- 14.6: out of memory is 420, always answered ---------------------------------------------
def test_at_the_heaps_edge_every_request_is_answered_and_never_500(tmp_path):
    """Rule 14.6: filling the device runtime's heap with leaves, every request gets an answer;
    a request the heap cannot hold is 420 (never 500 "storage write failed", never silence),
    and the agent serves on."""
    agent = start_agent(tmp_path, runtime="micropython", insecure=True, heap="110k")
    statuses = {}
    try:
        with Device.open(agent.url, timeout=5, retries=1) as dev:
            dev.hello("ServerA")
            for i in range(400):
                reply = dev.request(P.OP_ADD, {P.K_URI: "./Big%d" % i, P.K_VALUE: "x" * 600}, check=False)
                status = reply[P.K_STATUS]
                statuses[status] = statuses.get(status, 0) + 1
                if status == P.S_DEVICE_FULL:
                    full = reply.get(P.K_MSG)
                    break
            assert P.S_DEVICE_FULL in statuses, statuses
            assert P.S_FAILED not in statuses, statuses
            print("statuses until full: %r; the 420 says %r" % (statuses, full))
            assert dev.info()["proto"] == P.PROTOCOL_VERSION  # serving on
    finally:
        agent.stop()
