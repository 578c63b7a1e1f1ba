"""The standard objects every agent carries (OMA DM 1.2.1 Standardized Objects; omadm-rules
"Standard objects"): DevInfo, DevDetail, DMAcc, their leaves, formats and protections."""

from dmagent.agent import proto as P
from dmagent.host_tools.conformance.registry import Skipped, check

G = "standard objects"

DEVINFO = ("DevId", "Man", "Mod", "DmV", "Lang")
DEVDETAIL = (("DevTyp", "chr"), ("OEM", "chr"), ("FwV", "chr"), ("SwV", "chr"), ("HwV", "chr"),
             ("LrgObj", "bool"), ("URI/MaxDepth", "int"), ("URI/MaxTotLen", "int"), ("URI/MaxSegLen", "int"))
MO_TYPES = (("./DevInfo", "urn:oma:mo:oma-dm-devinfo:1.0"), ("./DevDetail", "urn:oma:mo:oma-dm-devdetail:1.0"),
            ("./DMAcc", "urn:oma:mo:oma-dm-dmacc:1.0"))


def _leaf(uri, fmt):
    def run(t):
        resp = t.expect(t.get(uri), 200)
        t.equal(resp.get(P.K_FORMAT), fmt, "format of " + uri)
    return run


for _name in DEVINFO:
    check("DM-StdObj DevInfo/%s: present, format chr" % _name, G)(_leaf("./DevInfo/" + _name, "chr"))
for _name, _fmt in DEVDETAIL:
    check("DM-StdObj DevDetail/%s: present, format %s" % (_name, _fmt), G)(_leaf("./DevDetail/" + _name, _fmt))
for _uri, _mo in MO_TYPES:
    check("DM-StdObj MO identifier: %s has Type %s" % (_uri, _mo), G)(
        (lambda uri, mo: lambda t: t.equal(t.value(uri + "?prop=Type"), mo, "Type of " + uri))(_uri, _mo))


@check("DM-StdObj DevInfo/DevId: a URN-style identifier (scheme:value), not empty", G)
def devid(t):
    value = t.value("./DevInfo/DevId")
    t.true(isinstance(value, str) and ":" in value and value.split(":", 1)[1], "DevId %r" % (value,))


@check("DM-StdObj DevInfo/DmV: the DM version is 1.2 or later", G)
def dmv(t):
    value = t.value("./DevInfo/DmV")
    t.true(isinstance(value, str) and value[:1].isdigit() and tuple(int(x) for x in value.split(".")[:2]) >= (1, 2),
           "DmV %r" % (value,))


@check("DM-StdObj DevInfo: a device's identity cannot be replaced by a server (405 or 425)", G)
def devinfo_read_only(t):
    before = t.value("./DevInfo/DevId")
    t.expect(t.replace("./DevInfo/DevId", "urn:conformance:x", "chr"), 405, 425)
    t.equal(t.value("./DevInfo/DevId"), before, "DevId")


@check("omadm-rules Delete: permanent standard objects (./DevInfo, ./DevDetail, ./DMAcc) cannot be deleted (405)", G)
def permanent(t):
    for uri in ("./DevInfo", "./DevDetail", "./DMAcc"):
        t.expect(t.delete(uri), 405, what=uri)


@check("omadm-rules Scope: a permanent node cannot be renamed (405)", G)
def permanent_rename(t):
    t.expect(t.replace("./DevInfo?prop=Name", "Renamed"), 405, 425)
    t.expect(t.get("./DevInfo"), 200, what="./DevInfo after the refused rename")


@check("DM-StdObj DevDetail/LrgObj: false, and then every value fits one message", G)
def lrgobj(t):
    t.equal(t.value("./DevDetail/LrgObj"), False, "LrgObj")


def _accounts(t):
    try:
        names = t.value("./DMAcc")
    except Exception:
        raise Skipped("./DMAcc is not readable by " + t.p1)
    if not names:
        raise Skipped("no accounts in ./DMAcc")
    return ["./DMAcc/" + n for n in names]


def _readable(t, accounts):
    out = [a for a in accounts if t.get(a).get(P.K_STATUS) == 200]
    if not out:
        raise Skipped("no account readable by " + t.p1)
    return out


@check("DM-StdObj DMAcc: every account has a ServerID (Occurrence One)", G)
def server_id(t):
    for acc in _readable(t, _accounts(t)):
        t.expect(t.get(acc + "/ServerID"), 200, what=acc)


@check("omadm-rules DMAcc: ServerID values are unique", G)
def unique_ids(t):
    ids = [t.value(a + "/ServerID") for a in _readable(t, _accounts(t))]
    t.equal(len(ids), len(set(ids)), "ServerIDs %r" % ids)


@check("omadm-rules DMAcc: an account whose ServerID duplicates another's is 418", G)
def duplicate_id(t):
    uri = "./DMAcc/ConformanceDup"
    resp = t.add(uri, fmt="node")
    if resp.get(P.K_STATUS) != 200:
        raise Skipped("%s may not add accounts (Add on ./DMAcc: %s)" % (t.p1, resp.get(P.K_STATUS)))
    try:
        t.expect(t.add(uri + "/ServerID", t.p1, "chr"), 418)
    finally:
        t.delete(uri)


@check("DM-StdObj DMAcc: AppID is present in every account (Occurrence One)", G)
def app_id(t):
    for acc in _readable(t, _accounts(t)):
        t.expect(t.get(acc + "/AppID"), 200, what=acc)


@check("DM-StdObj DMAcc: AppAddr is present in every account, each address with Addr and AddrType", G)
def app_addr(t):
    for acc in _readable(t, _accounts(t)):
        names = t.value(acc + "/AppAddr")
        t.true(names, acc + "/AppAddr has no address")
        for name in names:
            for leaf in ("Addr", "AddrType"):
                t.expect(t.get("%s/AppAddr/%s/%s" % (acc, name, leaf)), 200, what=leaf)


@check("DM-StdObj DMAcc: every AppAuth entry has an AAuthLevel (Occurrence One)", G)
def aauth_level(t):
    seen = 0
    for acc in _readable(t, _accounts(t)):
        resp = t.get(acc + "/AppAuth")
        if resp.get(P.K_STATUS) != 200:
            continue
        for name in resp.get(P.K_VALUE) or []:
            seen += 1
            t.expect(t.get("%s/AppAuth/%s/AAuthLevel" % (acc, name)), 200, what=name)
    if not seen:
        raise Skipped("no AppAuth entries readable")


def _auth_leaves(t, leaf):
    found = []
    for acc in _readable(t, _accounts(t)):
        resp = t.get(acc + "/AppAuth")
        for name in resp.get(P.K_VALUE) or [] if resp.get(P.K_STATUS) == 200 else []:
            uri = "%s/AppAuth/%s/%s" % (acc, name, leaf)
            if t.get(uri + "?prop=Format").get(P.K_STATUS) == 200:
                found.append(uri)
    if not found:
        raise Skipped("no %s readable as a node" % leaf)
    return found


@check("omadm-rules secrets: AAuthSecret is write-only: Get is 405 whatever the ACL", G)
def secret_no_get(t):
    for uri in _auth_leaves(t, "AAuthSecret"):
        t.expect(t.get(uri), 405, what=uri)


@check("omadm-rules secrets: the Size of AAuthSecret is not told either (405)", G)
def secret_no_size(t):
    for uri in _auth_leaves(t, "AAuthSecret"):
        t.expect(t.get(uri + "?prop=Size"), 405, what=uri)


@check("DM-StdObj DMAcc: AAuthData is No-Get (405)", G)
def aauth_data(t):
    for uri in _auth_leaves(t, "AAuthData"):
        t.expect(t.get(uri), 405, what=uri)


@check("omadm-rules secrets: a Copy of AAuthSecret is refused like its Get (405) and copies nothing", G)
def secret_no_copy(t):
    d = t.dir()
    uri = _auth_leaves(t, "AAuthSecret")[0]
    t.expect(t.req(P.OP_COPY, uri=d + "/Leak", source=uri), 405, 425)
    t.expect(t.get(d + "/Leak"), 404, what="the copy")
