"""Reading the wire (host_tools.sniff, `dmagent sniff`, `dmagent proxy`): a recorded
session decodes, plain and sealed (opened with the key by following the handshake, shown as
sealed without it); the proxy relays a whole CLI session byte for byte and saves a pcapng
capture that sniff reads and tshark (when installed) opens as it is."""

import json
import shutil
import signal
import subprocess
import sys
import time

import cbor2
import pytest

from dmagent.agent import proto as P
from dmagent.host_tools.client.device import Device
from dmagent.host_tools.sniff import Sniffer, diag
from dmagent.host_tools.sniff.capture import FLAG_INBOUND, FLAG_OUTBOUND, LINKTYPE, CaptureWriter, read_capture
from dmagent.host_tools.sniff.proxy import Proxy
from tests.host import conformance_setup as S
from tests.host.agents import ROOT, start_agent


def test_cbor_diagnostic_notation_rfc8949_section_8():
    value = cbor2.loads(bytes.fromhex("a3 01 82 f5 f6 61 61 43 010203 02 c1 1a 5f5e1000".replace(" ", "")))
    assert diag(value) in ('{1: [true, null], "a": h\'010203\', 2: 1(1600000000)}',
                           '{1: [true, null], "a": h\'010203\', 2: %r}' % value[2])
    assert diag([1.5, float("nan"), float("-inf"), "q\"", cbor2.undefined]) == '[1.5, NaN, -Infinity, "q\\"", undefined]'


class _Tap:
    """A recorder between the client and the device: the bytes each way, as they went."""

    def __init__(self, transport):
        self.inner = transport
        self.chunks = []

    def write(self, data):
        self.chunks.append(("out", bytes(data)))
        self.inner.write(data)

    def read(self, timeout):
        data = self.inner.read(timeout)
        if data:
            self.chunks.append(("in", bytes(data)))
        return data

    def close(self):
        self.inner.close()


def _record(url, key=None):
    from dmagent.host_tools.client.transport import open_url

    tap = _Tap(open_url(url))
    dev = Device.over(tap, principal="ServerA", key=key)
    uri = "./Sniffed%d" % time.monotonic_ns()
    dev.add(uri, interior=True)
    dev.set_acl(uri, "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA")
    dev.get(uri)
    dev.delete(uri)
    dev.close()
    return tap.chunks


def _events(chunks, keys=None):
    sniffer = Sniffer(keys)
    out = []
    for direction, data in chunks:
        out += sniffer.feed(direction, data)
    return out


@pytest.fixture(scope="module")
def keyed_agent(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sniff")
    agent = start_agent(tmp, config=S.config(), insecure=False, extra=["--keys", str(tmp / "keys")]) \
        if S.key_files(tmp / "keys") else None
    agent.key = tmp / "keys" / "ServerA.key"
    yield agent
    agent.stop()


def test_sniff_decodes_a_recorded_plain_session(tmp_path):
    agent = start_agent(tmp_path)
    try:
        events = _events(_record(agent.url))
    finally:
        agent.stop()
    lines = [(e.direction, e.summary) for e in events]
    assert lines[0] == ("out", "plain hello id %d" % events[0].message[P.K_ID])
    uri = events[2].message[P.K_URI]
    assert ("out", "plain add id %d %s" % (events[2].message[P.K_ID], uri)) == lines[2]
    assert lines[3][1].endswith("status 200 OK") and all(e.error is None for e in events)
    assert events[6].diagnostic == '{0: %d, 1: 3, 20: %d, 3: "%s"}' % (
        events[6].message[P.K_ID], events[6].message[P.K_TOKEN], uri)  # 20: the client token


def test_sniff_opens_a_sealed_session_with_the_key_and_shows_it_sealed_without(keyed_agent):
    chunks = _record(keyed_agent.url, key=keyed_agent.key)
    opened = _events(chunks, dict(S.keys()))
    kinds = [e.summary.split()[0] + (" " + e.summary.split()[1] if e.kind == P.KIND_HANDSHAKE else "") for e in opened]
    assert kinds[:4] == ["handshake HS1", "handshake HS2", "handshake HS3", "handshake HS4"]
    sealed = [e for e in opened if e.kind == P.KIND_SEALED]
    assert sealed and all(e.opened for e in sealed)
    assert [e.message.get(P.K_OP) for e in sealed if e.direction == "out"] == [P.OP_ADD, P.OP_REPLACE, P.OP_GET,
                                                                                P.OP_DELETE]
    assert [e.message.get(P.K_STATUS) for e in sealed if e.direction == "in"] == [200, 200, 200, 200]
    blind = [e for e in _events(chunks) if e.kind == P.KIND_SEALED]
    assert all(e.message is None and "not opened" in e.summary for e in blind)
    wrong = [e for e in _events(chunks, {"ServerA": b"\x99" * 16}) if e.kind == P.KIND_SEALED]
    assert all(not e.opened for e in wrong)  # a wrong key opens nothing, it never guesses


def test_a_capture_holds_one_block_a_frame_with_direction_and_time_and_sniff_reads_it(tmp_path, keyed_agent):
    chunks = _record(keyed_agent.url, key=keyed_agent.key)
    path = tmp_path / "session.pcapng"
    now = time.time()
    with CaptureWriter(path) as cap:
        for event in _events(chunks):
            cap.write(event.direction, event.raw, now)
    packets = list(read_capture(path))
    assert [d for _, d, _ in packets] == [e.direction for e in _events(chunks)]
    assert abs(packets[0][0] - now) < 1e-3
    cli = subprocess.run([sys.executable, "-m", "dmagent.host_tools.cli", "sniff", str(path), "--key", str(keyed_agent.key),
                          "--json"], cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    decoded = [json.loads(line) for line in cli.stdout.splitlines()]
    assert cli.returncode == 0 and len(decoded) == len(packets)
    assert sum(1 for d in decoded if d["opened"]) == 8
    if shutil.which("tshark"):
        out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.len", "-e",
                              "frame.packet_flags_direction"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        rows = [line.split("\t") for line in out.stdout.splitlines()]
        assert [(int(n), int(d, 0)) for n, d in rows] == [
            (len(data), FLAG_OUTBOUND if direction == "out" else FLAG_INBOUND) for _, direction, data in packets]
        info = subprocess.run(["capinfos", "-E", str(path)], capture_output=True, text=True, timeout=60)
        assert "USER 0" in info.stdout
    assert LINKTYPE == 147 and (FLAG_INBOUND, FLAG_OUTBOUND) == (1, 2)


def test_proxy_relays_a_full_cli_session_unchanged_and_saves_what_it_saw(tmp_path, keyed_agent):
    capture = tmp_path / "proxy.pcapng"
    seen = []
    writer = CaptureWriter(capture)
    proxy = Proxy("127.0.0.1:0", keyed_agent.url, seen.append, writer, dict(S.keys())).start()
    try:
        url = "tcp://127.0.0.1:%d" % proxy.port
        cli = [sys.executable, "-m", "dmagent.host_tools.cli", "-d", url, "--key", str(keyed_agent.key)]
        steps = [["add", "./ViaProxy", "--interior"],
                 ["acl", "./ViaProxy", "--set", "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA"],
                 ["add", "./ViaProxy/T", "--value", "21", "--format", "int"],
                 ["get", "./ViaProxy/T"], ["delete", "./ViaProxy"]]
        results = [subprocess.run(cli + step, cwd=str(ROOT), capture_output=True, text=True, timeout=60)
                   for step in steps]
    finally:
        time.sleep(0.3)
        proxy.close()
        writer.close()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert results[3].stdout.strip() == "21"
    assert proxy.connections == len(steps)
    # unchanged: every frame the proxy passed on decodes, and each request got its answer
    assert all(e.error is None for e in seen)
    requests = [e for e in seen if e.kind == P.KIND_SEALED and e.direction == "out"]
    answers = [e for e in seen if e.kind == P.KIND_SEALED and e.direction == "in"]
    assert len(requests) == len(answers) >= len(steps) and all(e.opened for e in requests + answers)
    assert [e.message[P.K_ID] for e in requests] == [e.message[P.K_ID] for e in answers]
    assert len(list(read_capture(capture))) == len(seen)


def test_proxy_command_prints_both_directions_and_a_bad_listen_address_is_one_line(tmp_path, keyed_agent):
    proc = subprocess.Popen([sys.executable, "-m", "dmagent.host_tools.cli", "proxy", "--listen", "127.0.0.1:0", "--to",
                             keyed_agent.url, "--key", str(keyed_agent.key)], cwd=str(ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("relaying tcp://127.0.0.1:")
        url = first.split()[1]
        with Device.open(url, key=keyed_agent.key) as dev:
            assert dev.get("./DevInfo/Man") == "dmagent project"
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert "gw -> dev handshake HS1" in out and "dev -> gw sealed" in out and '"dmagent project"' in out
    bad = subprocess.run([sys.executable, "-m", "dmagent.host_tools.cli", "proxy", "--listen", "256.0.0.1:80", "--to",
                          keyed_agent.url], cwd=str(ROOT), capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
