"""Rule: a large read's reply is not kept by the reply cache: its retry reads afresh (a write
answered 200 is in the journal once however often retried: test_exactly_once_journal).
Plain asserts.
"""

from agent import proto as P
from agent.app import App
from tests.agent.edge_helpers import ask as _ask

_CONFIG = {"device": {"devid": "urn:t"}, "accounts": [{"server_id": "A"}]}


def test_rule_a_large_read_reply_is_not_kept_its_retry_reads_afresh():
    app = App(_CONFIG, insecure=True, log=lambda msg: None)
    link = app.new_link("t", False)
    assert _ask(link, {P.K_ID: 1, P.K_OP: P.OP_HELLO, P.K_SERVER: "A"})[P.K_STATUS] == 200
    big = "x" * 400
    assert _ask(link, {P.K_ID: 2, P.K_OP: P.OP_ADD, P.K_URI: "./big", P.K_VALUE: big,
                       P.K_FORMAT: "chr"})[P.K_STATUS] == 200
    get = {P.K_ID: 3, P.K_OP: P.OP_GET, P.K_URI: "./big"}
    assert _ask(link, get)[P.K_VALUE] == big
    app.tree.put("./big", "y" * 400, "chr")
    assert _ask(link, get)[P.K_VALUE] == "y" * 400
    link.close()
