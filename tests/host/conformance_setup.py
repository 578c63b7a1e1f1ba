"""What the conformance tests share: a device config with every feature the suite probes
(a gateway, an integrity-only principal, a confidential subtree, a spare account ServerA
may manage), its key files, and the checks the audit found broken and still open."""

import json

from tests.host.agents import DEMO_CONFIG

KEYS = {"ServerA": "a1" * 16, "ServerB": "b2" * 16, "GW1": "c3" * 32}

# The audit's failures still open (issue 13): the suite reports them as failures and the
# project's tests expect it to (strict xfails). None are open: an entry here is a regression
# accepted on purpose, with its reason.
KNOWN_GAPS = {}

# The test device's own DDF: what `dmagent test --ddf` checks it enforces.
BOARD_DDF = b"""<?xml version="1.0" encoding="UTF-8"?>
<MgmtTree>
  <VerDTD>1.2</VerDTD>
  <Node>
    <NodeName>Board</NodeName>
    <Path>.</Path>
    <RTProperties><ACL>Add=ServerA&amp;Delete=ServerA&amp;Get=*&amp;Replace=ServerA</ACL></RTProperties>
    <DFProperties>
      <AccessType><Get/></AccessType>
      <DFFormat><node/></DFFormat>
      <Occurrence><One/></Occurrence>
      <Scope><Permanent/></Scope>
      <DFType><DDFName>urn:example:mo:board:1.0</DDFName></DFType>
    </DFProperties>
    <Node>
      <NodeName>Serial</NodeName>
      <DFProperties>
        <AccessType><Get/></AccessType>
        <DefaultValue>SN-0001</DefaultValue>
        <DFFormat><chr/></DFFormat>
        <Scope><Permanent/></Scope>
        <DFType><MIME>text/plain</MIME></DFType>
      </DFProperties>
    </Node>
    <Node>
      <NodeName>Slots</NodeName>
      <RTProperties><ACL>Add=ServerA&amp;Delete=ServerA&amp;Get=*&amp;Replace=ServerA</ACL></RTProperties>
      <DFProperties>
        <AccessType><Add/><Get/></AccessType>
        <DFFormat><node/></DFFormat>
        <Scope><Permanent/></Scope>
        <DFType><DDFName></DDFName></DFType>
      </DFProperties>
      <Node>
        <NodeName></NodeName>
        <DFProperties>
          <AccessType><Add/><Delete/><Get/></AccessType>
          <DFFormat><chr/></DFFormat>
          <Occurrence><ZeroOrN>2</ZeroOrN></Occurrence>
          <DFType><MIME>text/plain</MIME></DFType>
        </DFProperties>
      </Node>
    </Node>
  </Node>
</MgmtTree>
"""


def board_ddf(folder):
    path = folder / "board.ddf.xml"
    path.write_bytes(BOARD_DDF)
    return path
# Found by the suite on the device runtime (not in the audit), open: none. (A sealed Add of a
# 1.2 KB value ran the 128k heap out before its 413: the request is now opened in the link's
# receive buffer, agent.ccm.decrypt_in_place.)
DEVICE_RUNTIME_GAPS = {}


def wrong_board_ddf(folder):
    """The board's DDF with a rule the device does not keep (./Board/Slots without Add): the
    suite must fail its check."""
    path = folder / "wrong.ddf.xml"
    path.write_bytes(BOARD_DDF.replace(b"<AccessType><Add/><Get/></AccessType>", b"<AccessType><Get/></AccessType>", 1))
    return path


def config():
    cfg = json.loads(DEMO_CONFIG.read_text())
    cfg["accounts"][0]["auth"]["data"] = "nonce-a"  # AAuthData: present, so its No-Get is checked
    cfg["accounts"].append({"name": "Spare", "server_id": "SpareServer"})
    for account in cfg["accounts"]:
        account["addr"] = "https://dm.example/" + account["server_id"]
    cfg["acls"] = {"./DMAcc/Spare": "Add=SpareServer&Delete=SpareServer&Get=ServerA+SpareServer"
                                    "&Replace=ServerA+SpareServer"}
    from dmagent.host_tools import ddf

    cfg["nodes"] = ddf.to_config(ddf.parse(BOARD_DDF, "board.ddf.xml"))["nodes"]
    cfg["security"] = {"gateways": {"GW1": ["ServerA"]}, "integrity_only": ["GW1"],
                       "confidential": ["./DMAcc"]}
    return cfg


def plain_config():
    """config() without `security`: for --insecure agents (a confidential subtree would need a
    sealed session)."""
    cfg = config()
    del cfg["security"]
    return cfg


def key_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for principal, key in KEYS.items():
        path = folder / (principal + ".key")
        path.write_text(json.dumps({"principal": principal, "key": key}))
        path.chmod(0o600)
        paths.append(path)
    return paths


def keys():
    return [(p, bytes.fromhex(k)) for p, k in KEYS.items()]
