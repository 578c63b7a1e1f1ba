"""Rule: a write answered 200 is in the journal once however often it is retried under its id,
and it is there after a reboot (its own module: an App with a store and a reboot want the
110k heap fresh). Through App, Link and a real Store in a folder. Plain asserts."""

import os

from agent import proto as P
from agent.app import App
from tests.agent.check import tohex
from tests.agent.edge_helpers import ask as _ask
from tests.agent.edge_helpers import rmtree as _rmtree
from tests.agent.store_stats import stats

_CONFIG = {"device": {"devid": "urn:t"}, "accounts": [{"server_id": "A"}]}


def test_rule_a_write_answered_200_is_in_the_journal_once_however_often_retried():
    base = "/tmp/dmagent-rc-%s" % tohex(os.urandom(4))
    d = base + "/state"
    try:
        app = App(_CONFIG, state_dir=d, insecure=True, log=lambda msg: None)
        link = app.new_link("t", False)
        assert _ask(link, {P.K_ID: 1, P.K_OP: P.OP_HELLO, P.K_SERVER: "A"})[P.K_STATUS] == 200
        before = stats(app.store)["journal_records"]
        add = {P.K_ID: 2, P.K_OP: P.OP_ADD, P.K_URI: "./X", P.K_VALUE: 5, P.K_FORMAT: "int"}
        for _ in range(3):
            assert _ask(link, add)[P.K_STATUS] == 200
        assert stats(app.store)["journal_records"] == before + 1
        link.close()
        app.store.close()
        again = App(_CONFIG, state_dir=d, insecure=True, log=lambda msg: None)  # a reboot
        assert again.tree.value("./X") == 5
        again.store.close()
    finally:
        _rmtree(base)
