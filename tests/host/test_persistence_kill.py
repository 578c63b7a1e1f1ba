"""Rule: nothing acknowledged is ever lost. The agent is killed (SIGKILL) while a write is
in flight (its request sent, its answer not yet read); after a restart on the same state
folder the tree holds every acknowledged write, plus at most the one write in flight.
"""

import json
import random
import time

import pytest

from dmagent.agent import proto as P
from dmagent.host_tools.client import wire
from dmagent.host_tools.client.device import Device, DeviceError, LinkError
from tests.host.agents import DEMO_CONFIG, start_agent

# ServerA may do anything below the root here: the test is about durability, not ACLs.
CONFIG = dict(json.loads(DEMO_CONFIG.read_text()), acls={".": "Add=*&Delete=ServerA&Get=*&Replace=ServerA"})


def _writes(rng, n):
    """A sequence of (op, uri, value) on a small tree, some replaces, some deletes."""
    ops = [("add", "./Kill", None)]
    live = []
    for i in range(n):
        if live and rng.random() < 0.3:
            uri = rng.choice(live)
            ops.append(("replace", uri, rng.randrange(1 << 20)))
        elif live and rng.random() < 0.15:
            uri = live.pop(rng.randrange(len(live)))
            ops.append(("delete", uri, None))
        else:
            uri = "./Kill/N%d" % i
            live.append(uri)
            ops.append(("add", uri, i))
    return ops


def _apply(state, op):
    kind, uri, value = op
    if kind == "delete":
        state.pop(uri, None)
    else:
        state[uri] = True if uri == "./Kill" else value


def _read_state(dev):
    try:
        return {u: (True if u == "./Kill" else v) for u, v in dev.list("./Kill", data=True)}
    except DeviceError as exc:
        assert exc.status == 404
        return {}


def _send_only(dev, rid, op):
    """Put one write's request on the wire and return at once, without its answer."""
    kind, uri, value = op
    message = {P.K_ID: rid, P.K_OP: {"add": P.OP_ADD, "replace": P.OP_REPLACE, "delete": P.OP_DELETE}[kind],
               P.K_URI: uri}
    if kind != "delete":
        message[P.K_VALUE] = value
        message[P.K_FORMAT] = "int" if value is not None else "node"
    frame = wire.encode_message(message)
    dev.transport.write(b"\x00" + frame[:-1])  # all but the delimiter: the agent waits for it
    time.sleep(0.05)
    dev.transport.write(frame[-1:])  # now it runs the write, and the kill follows at once


def _answered(dev, rid):
    """True if the answer (200) to rid had reached the host before the kill closed the link."""
    reader = wire.FrameReader()
    try:
        while True:
            data = dev.transport.read(0.3)
            if not data:
                return False
            for _, body in reader.feed(data):
                reply = wire.decode_message(body)
                if reply.get(P.K_ID) == rid:
                    return reply.get(P.K_STATUS) == 200
    except LinkError:
        return False


# The tree on the device runtime stays small: a 110k heap holds the agent and about a hundred nodes.
@pytest.mark.parametrize("runtime,rounds,writes", [("cpython", 12, 400), ("micropython", 5, 100)])
def test_kill_during_writes_keeps_every_acknowledged_write(tmp_path, runtime, rounds, writes):
    # Each round: some acknowledged writes, then one write's request, then SIGKILL within
    # a millisecond of its last byte, before its answer is read. A round counts as "during a write" when no answer
    # to that request had come back: the kill landed between the request and its answer.
    rng = random.Random(1234)
    acked = {}
    ops = _writes(rng, writes)
    pos = 0
    in_flight = None
    during = landed = 0
    for round_no in range(rounds):
        agent = start_agent(tmp_path, runtime=runtime, tcp=True, config=CONFIG)
        dev = Device.open(agent.url, timeout=2.0, retries=0, principal="ServerA")
        if round_no:
            state = _read_state(dev)
            assert state in _acceptable(acked, in_flight)
            landed += in_flight is not None and state != acked
            acked = state  # the in-flight write, if it landed, is now the truth
        in_flight = None
        for _ in range(rng.randrange(3, 12)):
            if pos >= len(ops) - 1:
                break
            kind, uri, value = ops[pos]
            pos += 1
            try:
                if kind == "add":
                    dev.add(uri, value, "int" if value is not None else "node")
                elif kind == "replace":
                    dev.replace(uri, value, "int")
                else:
                    dev.delete(uri)
            except DeviceError as exc:  # it needed an in-flight write that did not land
                assert exc.status in (404, 418), exc
                continue
            _apply(acked, ops[pos - 1])
        rid = 1000 + round_no
        _send_only(dev, rid, ops[pos])
        time.sleep(rng.choice((0, 0, rng.uniform(0, 0.001))))
        agent.kill()
        if _answered(dev, rid):
            _apply(acked, ops[pos])
        else:
            in_flight = ops[pos]
            during += 1
        pos += 1
        dev.close()
    agent = start_agent(tmp_path, runtime=runtime, tcp=True, config=CONFIG)
    with Device.open(agent.url, principal="ServerA") as dev:
        assert _read_state(dev) in _acceptable(acked, in_flight)
    agent.stop()
    print("kills during a write: %d of %d rounds; the write in flight landed in %d"
          % (during, rounds, landed))
    # The failure path was reached: a good share of the kills came between a write's request
    # and its answer (about 3 in 4 on an idle machine, 5 of 12 seen on a loaded one).
    assert during >= rounds // 3, "%d of %d kills landed during a write" % (during, rounds)


def _acceptable(acked, in_flight):
    states = [dict(acked)]
    if in_flight is not None:
        landed = dict(acked)
        _apply(landed, in_flight)
        states.append(landed)
    return states
