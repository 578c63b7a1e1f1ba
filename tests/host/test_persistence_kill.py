"""Rule: nothing acknowledged is ever lost. The agent is killed (SIGKILL) at random points
of a write sequence; after a restart on the same state folder the tree holds every
acknowledged write, plus at most the one write in flight when the kill came.
"""

import json
import random
import threading

import pytest

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


# The tree on the device runtime stays small: a 110k heap holds the agent and about a hundred nodes.
@pytest.mark.parametrize("runtime,rounds,writes", [("cpython", 6, 400), ("micropython", 3, 100)])
def test_kill_during_writes_keeps_every_acknowledged_write(tmp_path, runtime, rounds, writes):
    rng = random.Random(1234)
    acked = {}
    ops = _writes(rng, writes)
    pos = 0
    for round_no in range(rounds):
        agent = start_agent(tmp_path, runtime=runtime, tcp=True, config=CONFIG)
        dev = Device.open(agent.url, timeout=1.0, retries=0, principal="ServerA")
        if round_no:
            assert _read_state(dev) in _acceptable(acked, in_flight)
            acked = _read_state(dev)  # the in-flight write, if it landed, is now the truth
        threading.Timer(rng.uniform(0.05, 0.4), agent.kill).start()
        in_flight = None
        try:
            while pos < len(ops):
                in_flight = ops[pos]
                kind, uri, value = in_flight
                if kind == "add":
                    dev.add(uri, value, "int" if value is not None else "node")
                elif kind == "replace":
                    dev.replace(uri, value, "int")
                else:
                    dev.delete(uri)
                _apply(acked, in_flight)
                in_flight = None
                pos += 1
        except (LinkError, DeviceError, OSError):
            pass
        dev.close()
        agent.kill()
        if in_flight is not None:
            pos += 1  # carry on after it, whether or not it landed
    agent = start_agent(tmp_path, runtime=runtime, tcp=True, config=CONFIG)
    with Device.open(agent.url, principal="ServerA") as dev:
        assert _read_state(dev) in _acceptable(acked, in_flight)
    agent.stop()


def _acceptable(acked, in_flight):
    states = [dict(acked)]
    if in_flight is not None:
        landed = dict(acked)
        _apply(landed, in_flight)
        states.append(landed)
    return states
