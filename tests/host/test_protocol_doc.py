"""docs/protocol.md is exact: every worked example decodes with the host codec to its
message and re-encodes with the agent's own codec to the same bytes; its tables match
agent/proto.py.
"""

import ast
import re
from pathlib import Path

import cbor2
import pytest

from dmagent.agent import cbor, frame
from dmagent.agent import proto as P
from dmagent.host_tools.client import wire

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
EXAMPLES = re.findall(r"```python message=(\S+)\n(.*?)\n```\n```hex frame=\1\n(.*?)\n```", DOC, re.S)


def test_doc_has_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("name,message,hex_text", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_bytes_match_both_codecs(name, message, hex_text):
    expected = ast.literal_eval(message)
    wire_bytes = bytes.fromhex(hex_text)
    assert wire_bytes.endswith(b"\x00") and wire_bytes.count(0) == 1
    kind, body = wire.decode_frame(wire_bytes[:-1])
    assert kind == P.KIND_PLAIN
    assert cbor2.loads(body) == expected
    assert cbor.loads(body) == expected
    assert frame.encode_frame(P.KIND_PLAIN, cbor.dumps(expected)) == wire_bytes
    decoded = list(frame.FrameDecoder().feed(wire_bytes))
    assert [(k, bytes(b)) for k, b in decoded] == [(P.KIND_PLAIN, body)]


def test_field_key_table_matches_proto():
    rows = re.findall(r"^\| (\d+) \| (\w+) \| [a-z, ]+ \|", DOC, re.M)
    keys = {name: int(num) for num, name in rows}
    for name, num in keys.items():
        assert getattr(P, "K_" + name.upper()) == num, name
    assert len(keys) == len([n for n in dir(P) if n.startswith("K_")])


def test_op_table_matches_proto():
    rows = re.findall(r"^\| (\d+) \| (\w+) \| .* \| .* \|$", DOC, re.M)
    ops = {name: int(num) for num, name in rows if name in P.OP_NAMES.values()}
    assert ops == {name: code for code, name in P.OP_NAMES.items()}
    assert sorted(P.OP_NAMES) == list(range(1, P.OP_LAST + 1))  # the agent's range check


def test_status_table_matches_proto():
    rows = re.findall(r"^\| (\d{3}) \| ([^|]+?) \|", DOC, re.M)
    assert {int(code) for code, _ in rows} == set(P.STATUS_TEXT)


# The story section 5 tells: ServerA (an insecure hello) made ./Sensors, opened it to Get
# for everyone, and added ./Sensors/Temp. Each request example then gets the response example.
SETUP = [
    {0: 2, 1: P.OP_ADD, 3: "./Sensors", 5: "node"},
    {0: 3, 1: P.OP_REPLACE, 3: "./Sensors?prop=ACL", 4: "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA"},
    {0: 4, 1: P.OP_ADD, 3: "./Sensors/Temp", 4: 21, 5: "int"},
]
ANSWERS = [("get-request", "get-response"), ("add-request", "add-response-exists"),
           ("acl-request", "acl-response"), ("check-request", "check-response"),
           ("list-request", "list-response"), ("atomic-request", "atomic-response")]


def test_every_response_example_is_what_the_agent_answers_byte_for_byte():
    import json

    from dmagent.agent.app import App
    from tests.host.agents import DEMO_CONFIG

    frames = {name: bytes.fromhex(hex_text) for name, _, hex_text in EXAMPLES}
    app = App(json.loads(DEMO_CONFIG.read_text()), None, True, log=lambda line: None)
    link = app.new_link("doc", False)

    def exchange(data):
        return b"".join(bytes(reply) for reply in link.receive(data))

    assert wire.decode_message(wire.decode_frame(exchange(frames["hello-request"])[:-1])[1])[P.K_STATUS] == 200
    for message in SETUP:
        reply = wire.decode_message(wire.decode_frame(exchange(wire.encode_message(message))[:-1])[1])
        assert reply[P.K_STATUS] == 200, reply
    for request, response in ANSWERS:
        got = exchange(frames[request])
        assert got == frames[response], (response, cbor2.loads(wire.decode_frame(got[:-1])[1]), got.hex(" "))
    truncated = wire.encode_frame(P.KIND_PLAIN, b"\xa1")
    assert exchange(truncated) == frames["bad-cbor-response"]
