"""Rule: with a confidential policy, a plain frame never reaches the subtree it names, alone
or inside an Atomic (its own module: the security code's heap at 110k wants a fresh start)."""

from agent import proto as P
from agent.app import App
from tests.agent.edge_helpers import ask as _ask



def test_rule_a_plain_frame_never_reaches_a_confidential_subtree():
    config = {"device": {"devid": "urn:t"}, "accounts": [{"server_id": "A"}],
              "security": {"confidential": ["./DevInfo"]}, "open_reads": ["./DevInfo", "./DevDetail"]}
    app = App(config, insecure=True, log=lambda msg: None)
    link = app.new_link("t", False)
    assert _ask(link, {P.K_ID: 1, P.K_OP: P.OP_GET, P.K_URI: "./DevDetail/LrgObj"})[P.K_STATUS] == 200
    r = _ask(link, {P.K_ID: 2, P.K_OP: P.OP_GET, P.K_URI: "./DevInfo/DevId"})
    assert r[P.K_STATUS] in (P.S_FORBIDDEN, 407), r  # refused: policy, or no one proven
    items = [{P.K_OP: P.OP_REPLACE, P.K_URI: "./DevInfo/DevId", P.K_VALUE: "z"}]
    r = _ask(link, {P.K_ID: 3, P.K_OP: P.OP_ATOMIC, P.K_ITEMS: items})
    assert r[P.K_STATUS] in (P.S_FORBIDDEN, 407), r  # refused: policy, or no one proven
    assert app.tree.value("./DevInfo/DevId") == "urn:t"
    link.close()
