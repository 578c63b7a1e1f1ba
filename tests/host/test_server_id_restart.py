"""Rule (omadm-rules DMAcc, docs/protocol.md 4): a replaced ServerID takes the old id's rights
in every ACL, in one journal write: a real `dmagent serve` stopped and started again on its
state folder still has the new id everywhere, on CPython and on the device runtime."""

import pytest

from dmagent.host_tools.client.device import Device
from tests.host import conformance_setup as S
from tests.host.agents import start_agent


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_rule_a_replaced_serverids_rights_in_every_acl_survive_a_restart(tmp_path, runtime):
    config = S.plain_config()
    agent = start_agent(tmp_path, runtime=runtime, config=config, heap="128k")
    try:
        with Device.open(agent.url, principal="ServerA") as dev:
            dev.add("./R", interior=True)
            dev.set_acl("./R", "Delete=SpareServer&Get=ServerA+SpareServer&Replace=ServerA")
            dev.replace("./DMAcc/Spare/ServerID", "SpareMoved")
    finally:
        agent.stop()
    agent = start_agent(tmp_path, runtime=runtime, config=config, heap="128k")
    try:
        with Device.open(agent.url, principal="ServerA") as dev:
            assert dev.get("./DMAcc/Spare/ServerID") == "SpareMoved"
            assert dev.acl("./R")[0] == "Delete=SpareMoved&Get=ServerA+SpareMoved&Replace=ServerA"
            assert "SpareServer" not in dev.acl("./DMAcc/Spare")[0]
            assert dev.acl("./DMAcc/Spare")[0].count("SpareMoved") == 4
    finally:
        agent.stop()
