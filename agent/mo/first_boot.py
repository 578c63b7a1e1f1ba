"""First-boot seeding of the standard objects from config (see agent/mo/__init__.py)."""

from .. import acl as A
from .. import proto as P
from ..nodes import EACH, MOST, NO_ADD, NO_DELETE, PERMANENT, READONLY, SECRET

DMV = "1.2"
RO = PERMANENT | READONLY
# MO identifiers (OMA DM 1.2.1 Standardized Objects): the Type of each object's root
MO_DEVINFO = "urn:oma:mo:oma-dm-devinfo:1.0"
MO_DEVDETAIL = "urn:oma:mo:oma-dm-devdetail:1.0"
MO_DMACC = "urn:oma:mo:oma-dm-dmacc:1.0"
APP_ID = "w7"  # DMAcc AppID: the OMA DM application's registered id
EVERYONE_READ = "Get=*"


def _text(cfg, key, default=""):
    value = cfg.get(key, default)
    if type(value) is not str:
        raise ValueError("config: %s must be text" % key)
    return value


def seed(tree, config):
    # In several functions, not one: each function's code is one block of heap, and at a
    # first boot on a 110k heap no free piece held one of 365-408 bytes (docs/memory.md).
    accounts = config.get("accounts", [])
    ids = [_server_id(a) for a in accounts]
    dev = config.get("device", {})
    _seed_devinfo(tree, dev)
    _seed_devdetail(tree, dev, ids)

    # Each account is managed by its own server; the DMAcc listing is readable by all of them.
    dmacc_acl = "Get=" + "+".join(ids) if ids else ""
    tree.put("./DMAcc", fmt="node", acl=dmacc_acl, flags=PERMANENT, mime=MO_DMACC)
    for account, sid in zip(accounts, ids):
        _add_account(tree, account, sid)

    for node in config.get("nodes", []):  # `dmagent ddf import` writes these, Scope and all
        tree.put(node["uri"], node.get("value"), node.get("format"), node.get("acl", ""), ddf_flags(node),
                 node.get("title"), node.get("type"))
    for uri, acl in config.get("acls", {}).items():
        _set_acl(tree, uri, acl)


def _seed_devinfo(tree, dev):
    tree.put("./DevInfo", fmt="node", acl=EVERYONE_READ, flags=PERMANENT, mime=MO_DEVINFO)
    for name, key, default in (("DevId", "devid", "urn:dmagent:unset"), ("Man", "man", ""),
                               ("Mod", "mod", ""), ("DmV", "dmv", DMV), ("Lang", "lang", "en-US")):
        tree.put("./DevInfo/" + name, _text(dev, key, default), "chr", flags=RO)


def _seed_devdetail(tree, dev, ids):
    tree.put("./DevDetail", fmt="node", acl=EVERYONE_READ, flags=PERMANENT, mime=MO_DEVDETAIL)
    for name, key in (("DevTyp", "devtyp"), ("OEM", "oem"), ("FwV", "fwv"), ("SwV", "swv"),
                      ("HwV", "hwv")):
        tree.put("./DevDetail/" + name, _text(dev, key), "chr", flags=RO)
    tree.put("./DevDetail/LrgObj", False, "bool", flags=RO)
    tree.put("./DevDetail/URI", fmt="node", flags=PERMANENT)
    lim = tree.limits
    for name, key in (("MaxDepth", "max_depth"), ("MaxTotLen", "max_tot_len"),
                      ("MaxSegLen", "max_seg_len")):
        tree.put("./DevDetail/URI/" + name, lim[key], "int", flags=RO)
    _seed_ext(tree, ids)


def _server_id(account):
    sid = account.get("server_id")
    if not A.is_identifier(sid):
        raise ValueError("config: account server_id %r is not a valid identifier" % (sid,))
    return sid


def _add_account(tree, account, sid):
    name = account.get("name", sid)
    base = "./DMAcc/" + name
    own = "&".join([c + "=" + sid for c in (P.CMD_ADD, P.CMD_DELETE, P.CMD_GET, P.CMD_REPLACE)])
    tree.put(base, fmt="node", acl=own)
    # The DMAcc MO: AppID, ServerID, Name; AppAddr/<X>/{Addr, AddrType} for an account with
    # an address (four nodes an account: at 110k with keys there is no room for them empty).
    tree.put(base + "/AppID", APP_ID, "chr")
    tree.put(base + "/ServerID", sid, "chr")
    tree.put(base + "/Name", account.get("display", sid), "chr")
    if "addr" in account:
        tree.put(base + "/AppAddr", fmt="node")
        tree.put(base + "/AppAddr/Srv", fmt="node")
        tree.put(base + "/AppAddr/Srv/Addr", _text(account, "addr"), "chr")
        tree.put(base + "/AppAddr/Srv/AddrType", _text(account, "addr_type", "URI"), "chr")
    auth = account.get("auth")
    if auth:
        _add_auth(tree, base, auth, sid)


def _add_auth(tree, base, auth, sid):
    tree.put(base + "/AppAuth", fmt="node")
    tree.put(base + "/AppAuth/" + "Srv", fmt="node")
    leaf = base + "/AppAuth/Srv/"
    tree.put(leaf + "AAuthLevel", auth.get("level", "SRVCRED"), "chr")
    tree.put(leaf + "AAuthType", auth.get("type", "HMAC"), "chr")
    tree.put(leaf + "AAuthName", auth.get("name", sid), "chr")
    tree.put(leaf + "AAuthSecret", auth.get("secret", ""), "chr", flags=SECRET)
    if "data" in auth:  # ZeroOrOne; No-Get in the DMAcc DDF, like the secret
        tree.put(leaf + "AAuthData", _text(auth, "data"), "chr", flags=SECRET)


def _set_acl(tree, uri, acl):
    """config "acls": {uri: acl} replaces the own ACL of seeded nodes (a board's policy)."""
    tree.set_acl(uri, acl)


def _seed_ext(tree, server_ids):
    """./DevDetail/Ext and the nodes agent.mo binds agent.mo.ext's code to (here: boot only)."""
    tree.put("./DevDetail/Ext", fmt="node", flags=PERMANENT)
    tree.put("./DevDetail/Ext/Uptime", 0, "int", flags=PERMANENT | READONLY)
    exec_acl = "Exec=" + "+".join(server_ids) + "&Get=*" if server_ids else ""
    tree.put("./DevDetail/Ext/Echo", "", "chr", acl=exec_acl, flags=PERMANENT | READONLY)


def ddf_flags(node):
    """A config node's DDF properties as its flags (agent.nodes): Scope Permanent; AccessType
    without Replace (a leaf's value), Get (a leaf's), Add (an interior node), Delete; and its
    placeholder's flags and Occurrence. A leaf keeps no flag it has no use for: it stays bare."""
    leaf = node.get("format") != "node"
    flags = PERMANENT if node.get("scope") == "permanent" else 0
    access = node.get("access")
    if access is not None:
        for cmd, bit in (("Replace", READONLY if leaf else 0), ("Get", SECRET if leaf else 0),
                         ("Add", 0 if leaf else NO_ADD), ("Delete", NO_DELETE)):
            if cmd not in access:
                flags |= bit
    shape = node.get("placeholder")
    if shape and not leaf:
        most = 0
        occurrence = shape.get("occurrence") or ""
        if occurrence in ("One", "ZeroOrOne"):
            most = 1
        elif occurrence.split(":")[-1].isdigit():  # ZeroOrN:n, OneOrN:n
            most = min(int(occurrence.split(":")[-1]), 0xFFFFF)
        flags |= (ddf_flags(shape) & 31) << EACH | most << MOST
    return flags
