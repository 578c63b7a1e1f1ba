"""DDF import and export (host_tools.ddf, `dmagent ddf`): a DDF written for the test goes to
a config, into a real agent, and back out as a DDF with the same nodes; the standard
objects' own DDFs describe what the agent carries; unsafe or invalid files are refused with
a line and a column."""

import json
import subprocess
import sys

import pytest

from dmagent.agent import proto as P
from dmagent.host_tools import ddf
from dmagent.host_tools.client.device import Device, DeviceError
from tests.host.agents import DEMO_CONFIG, ROOT, start_agent

SENSORS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE MgmtTree PUBLIC "-//OMA//DTD-DM-DDF 1.2//EN" "http://www.openmobilealliance.org/tech/DTD/DM_DDF-V1_2.dtd">
<MgmtTree>
  <VerDTD>1.2</VerDTD>
  <Man>test</Man>
  <Node>
    <NodeName>Sensors</NodeName>
    <Path>.</Path>
    <RTProperties><ACL>Add=ServerA&amp;Delete=ServerA&amp;Get=*&amp;Replace=ServerA</ACL></RTProperties>
    <DFProperties>
      <AccessType><Add/><Get/></AccessType>
      <DFFormat><node/></DFFormat>
      <Occurrence><One/></Occurrence>
      <Scope><Permanent/></Scope>
      <DFTitle>Sensors of the board</DFTitle>
      <DFType><DDFName>urn:example:mo:sensors:1.0</DDFName></DFType>
    </DFProperties>
    <Node>
      <NodeName>Temp</NodeName>
      <DFProperties>
        <AccessType><Get/><Replace/></AccessType>
        <DefaultValue>21</DefaultValue>
        <DFFormat><int/></DFFormat>
        <Occurrence><ZeroOrOne/></Occurrence>
        <Scope><Dynamic/></Scope>
        <DFTitle>Temperature</DFTitle>
        <DFType><MIME>text/plain</MIME></DFType>
      </DFProperties>
    </Node>
    <Node>
      <NodeName>Limits</NodeName>
      <DFProperties>
        <AccessType><Get/></AccessType>
        <DFFormat><node/></DFFormat>
        <Occurrence><ZeroOrN>4</ZeroOrN></Occurrence>
        <Scope><Permanent/></Scope>
        <DFType><DDFName></DDFName></DFType>
      </DFProperties>
      <Node>
        <NodeName>High</NodeName>
        <DFProperties>
          <AccessType><Get/><Replace/></AccessType>
          <DefaultValue>true</DefaultValue>
          <DFFormat><bool/></DFFormat>
          <Occurrence><One/></Occurrence>
          <DFType><MIME>text/plain</MIME></DFType>
        </DFProperties>
      </Node>
    </Node>
    <Node>
      <NodeName></NodeName>
      <DFProperties>
        <AccessType><Add/><Get/></AccessType>
        <DFFormat><chr/></DFFormat>
        <Occurrence><ZeroOrMore/></Occurrence>
        <DFType><MIME>text/plain</MIME></DFType>
      </DFProperties>
    </Node>
  </Node>
</MgmtTree>
"""


def _by_uri(nodes):
    return {n["uri"]: n for n in nodes}


def test_ddf_import_keeps_scope_access_occurrence_title_type_and_values():
    nodes = _by_uri(ddf.to_config(ddf.parse(SENSORS, "sensors.xml"))["nodes"])
    assert list(nodes) == ["./Sensors", "./Sensors/Temp", "./Sensors/Limits", "./Sensors/Limits/High"]  # no <X>
    assert nodes["./Sensors"] == {"uri": "./Sensors", "format": "node", "access": ["Add", "Get"], "occurrence": "One",
                                  "scope": "permanent", "title": "Sensors of the board",
                                  "type": "urn:example:mo:sensors:1.0",
                                  "acl": "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA",
                                  "placeholder": {"format": "chr", "access": ["Add", "Get"], "occurrence": "ZeroOrMore"}}
    assert nodes["./Sensors/Temp"]["value"] == 21 and nodes["./Sensors/Temp"]["occurrence"] == "ZeroOrOne"
    assert nodes["./Sensors/Limits"]["occurrence"] == "ZeroOrN:4"
    assert nodes["./Sensors/Limits/High"]["value"] is True


def test_ddf_round_trip_offline_config_to_ddf_and_back_is_the_same():
    first = ddf.to_config(ddf.parse(SENSORS))
    again = ddf.to_config(ddf.parse(ddf.to_ddf(ddf.from_config(first)).encode()))
    assert again == first


def test_ddf_import_into_a_live_agent_and_export_of_the_live_tree(tmp_path):
    config = json.loads(DEMO_CONFIG.read_text())
    config["nodes"] = ddf.to_config(ddf.parse(SENSORS))["nodes"]
    agent = start_agent(tmp_path, config=config)
    try:
        with Device.open(agent.url, principal="ServerA") as dev:
            assert dev.get("./Sensors/Temp") == 21 and dev.get("./Sensors/Limits/High") is True
            assert dev.get("./Sensors", "Title") == "Sensors of the board"
            assert dev.get("./Sensors", "Type") == "urn:example:mo:sensors:1.0"
            with pytest.raises(DeviceError) as err:  # Scope Permanent: the agent keeps it
                dev.delete("./Sensors/Limits")
            assert err.value.status == P.S_NOT_ALLOWED
            with pytest.raises(DeviceError) as err:  # AccessType Get only: no Add below it
                dev.add("./Sensors/Limits/Low", False, "bool")
            assert err.value.status == P.S_NOT_ALLOWED
            dev.add("./Sensors/Extra", "x", "chr")  # the placeholder's AccessType: Add, Get
            with pytest.raises(DeviceError) as err:
                dev.replace("./Sensors/Extra", "y")
            assert err.value.status == P.S_NOT_ALLOWED
            exported = ddf.to_ddf(ddf.from_device(dev, "./Sensors"))
    finally:
        agent.stop()
    back = _by_uri(ddf.to_config(ddf.parse(exported.encode()))["nodes"])
    want = _by_uri(config["nodes"])
    assert set(back) == set(want) | {"./Sensors/Extra"}  # made at run time (and not deletable)
    for uri, node in want.items():
        for key in ("format", "value", "title"):
            assert back[uri].get(key) == node.get(key), (uri, key)
        assert back[uri]["acl"] == node.get("acl", ""), uri  # no ACL in the DDF: the empty one
    assert back["./Sensors"]["type"] == "urn:example:mo:sensors:1.0"


def test_standard_objects_ddfs_validate_and_describe_what_the_agent_carries(tmp_path):
    agent = start_agent(tmp_path)
    try:
        with Device.open(agent.url, principal="ServerA") as dev:
            for name, path in ddf.STANDARD.items():
                for node in ddf.to_config(ddf.read_file(path))["nodes"]:
                    assert dev.get(node["uri"], "Format") == node["format"], node["uri"]
                    if node["format"] == "node":
                        assert dev.get(node["uri"], "Type") == node.get("type", ""), node["uri"]
    finally:
        agent.stop()


@pytest.mark.parametrize("bad,where,what", [
    (b'<?xml version="1.0"?>\n<!DOCTYPE MgmtTree [\n <!ENTITY a "aaaaaaaaaa">\n <!ENTITY b "&a;&a;&a;&a;&a;&a;">\n]>\n'
     b"<MgmtTree><VerDTD>&b;</VerDTD></MgmtTree>", ":3:", "refused: EntitiesForbidden"),
    (b'<?xml version="1.0"?>\n<!DOCTYPE MgmtTree [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
     b"<MgmtTree><VerDTD>&x;</VerDTD></MgmtTree>", ":2:", "refused"),
    (b"<MgmtTree>\n  <VerDTD>1.2</VerDTD>\n  <Node><NodeName>A</NodeName></Node>\n</MgmtTree>", ":3:3:",
     "<Node> holds <NodeName>, which the DDF DTD does not allow"),
    (b"<MgmtTree>\n<VerDTD>1.2</VerDTD>\n<Nodes/>\n</MgmtTree>", ":3:1:", "<Nodes> is not a DDF element"),
    (b"<MgmtTree><VerDTD>1.2</VerDTD>\n<Node>", ":2:", "not well-formed XML"),
])
def test_an_unsafe_or_invalid_ddf_is_refused_with_its_line_and_column(bad, where, what):
    with pytest.raises(ddf.DDFError) as err:
        ddf.parse(bad, "bad.xml")
    text = str(err.value)
    assert text.startswith("bad.xml") and where in text and what in text and "\n" not in text, text


def test_cli_ddf_import_and_a_refused_file_in_one_line(tmp_path):
    good = tmp_path / "sensors.xml"
    good.write_bytes(SENSORS)
    bomb = tmp_path / "bomb.xml"
    bomb.write_bytes(b'<?xml version="1.0"?>\n<!DOCTYPE MgmtTree [<!ENTITY a "a">]>\n<MgmtTree/>')
    run = [sys.executable, "-m", "dmagent.host_tools.cli", "ddf", "import"]
    ok = subprocess.run(run + [str(good)], cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["nodes"][0]["uri"] == "./Sensors"
    bad = subprocess.run(run + [str(bomb)], cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "bomb.xml:2:" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
