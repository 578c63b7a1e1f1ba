"""Property test: the agent's ACL decisions equal those of a small reference model.

The model below is written from shared/design/omadm-rules.md alone: its own ACL parser, its
own inheritance and its own permission table; it imports nothing of agent.acl, agent.query or
agent.tree. Hypothesis builds random trees (random own ACLs, a DMAcc with accounts, permanent
nodes, Exec handlers), then runs random Get / Add / Replace (value and ?prop=ACL) / Delete /
Exec / effective-ACL queries / permission checks as random principals through
agent.dispatch.Dispatcher, and after every request compares the status (and what the request
returned) and then the whole tree (nodes, values, own ACLs) with the model's.

Principals include `AB` next to `A` and `B`, so substring matching would show.
"""

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import examples

from dmagent.agent import proto as P
from dmagent.agent.dispatch import Dispatcher
from dmagent.agent.tree import Tree

CMDS = ("Add", "Delete", "Exec", "Get", "Replace")
IDS = ("A", "B", "AB", "C")
NAMES = ("a", "b", "c")
_ID = re.compile(r"[!-~]+\Z")


# --- the reference model ------------------------------------------------------------------------


class Malformed(Exception):
    pass


def m_parse(text):
    """ACL text -> {cmd: [ids]} per the grammar of omadm-rules.md; Malformed if it is not."""
    if text == "":
        return {}
    acl = {}
    for entry in text.split("&"):
        cmd, eq, rest = entry.partition("=")
        if not eq or cmd not in CMDS:
            raise Malformed(entry)
        ids = rest.split("+")
        for ident in ids:
            if ident != "*" and (not _ID.match(ident) or set(ident) & set("=&*+")):
                raise Malformed(ident)
        merged = acl.setdefault(cmd, [])
        merged.extend(i for i in ids if i not in merged)
        if "*" in merged and len(merged) > 1:
            raise Malformed("* with others")
    return acl


def m_grants(acl, cmd, who):
    ids = acl.get(cmd, [])
    return "*" in ids or who in ids


class MNode:
    def __init__(self, interior, acl=None, value=None, permanent=False, execable=False):
        self.interior = interior
        self.acl = acl or {}  # {} is an empty ACL: inherit
        self.value = value
        self.permanent = permanent
        self.execable = execable


class Model:
    def __init__(self, root_acl):
        self.nodes = {(): MNode(True, root_acl, permanent=True)}

    # where a request lands
    def find(self, path):
        """The node at path, or None if it or a step to it is missing (or a leaf)."""
        for i in range(len(path)):
            node = self.nodes.get(path[:i])
            if node is None or not node.interior:
                return None
        return self.nodes.get(path)

    def effective(self, path):
        """(ACL, source path): the node's own ACL unless empty, else the nearest ancestor's."""
        for i in range(len(path), -1, -1):
            acl = self.nodes[path[:i]].acl
            if acl:
                return acl, path[:i]
        raise AssertionError("the root has an empty ACL")

    def may(self, who, cmd, path):
        return m_grants(self.effective(path)[0], cmd, who)

    def subtree(self, path):
        """path and every node below it, pre-order, children in name order."""
        out = [path]
        kids = sorted(p for p in self.nodes if len(p) == len(path) + 1 and p[: len(path)] == path)
        for kid in kids:
            out.extend(self.subtree(kid))
        return out

    def children(self, path):
        return sorted(p[-1] for p in self.nodes if len(p) == len(path) + 1 and p[: len(path)] == path)

    # decisions (each returns the status, or (200, result))
    def acl_replace_allowed(self, who, path):
        node = self.nodes[path]
        if node.interior and self.may(who, "Replace", path):
            return True
        return bool(path) and self.may(who, "Replace", path[:-1])

    def delete_denied(self, who, path):
        """The source path of the first node (pre-order) whose effective ACL denies Delete."""
        for p in self.subtree(path):
            acl, src = self.effective(p)
            if not m_grants(acl, "Delete", who):
                return src
        return None

    def get(self, who, path):
        node = self.find(path)
        if node is None:
            return 404
        if not self.may(who, "Get", path):
            return 425
        return 200, (self.children(path) if node.interior else node.value)

    def get_acl(self, who, path):
        if self.find(path) is None:
            return 404
        if not self.may(who, "Get", path):
            return 425
        return 200, self.nodes[path].acl

    def acl_query(self, who, path):
        if self.find(path) is None:
            return 404
        if not self.may(who, "Get", path):
            return 425
        eff, src = self.effective(path)
        return 200, (self.nodes[path].acl, eff, src)

    def add(self, who, path, interior, value):
        if not path:
            return 418
        parent = self.find(path[:-1])
        if parent is None:
            return 404
        if not parent.interior:
            return 405
        if path in self.nodes:
            return 418
        if not self.may(who, "Add", path[:-1]):
            return 425
        if self.is_server_id(path):
            return 400  # values here are ints: not an identifier
        acl = {}
        if interior and not self.may(who, "Replace", path[:-1]):
            acl = {"Add": [who], "Delete": [who], "Replace": [who]}  # the creator exception
        self.nodes[path] = MNode(interior, acl, None if interior else value)
        return 200, None

    def replace(self, who, path, value):
        node = self.find(path)
        if node is None:
            return 404
        if node.interior or node.permanent:
            return 405
        if not self.may(who, "Replace", path):
            return 425
        if type(value) is not type(node.value):
            return 415
        if self.is_server_id(path):
            for p, other in self.nodes.items():
                if self.is_server_id(p) and p != path and other.value == value:
                    return 418
            if value != node.value:
                if any(value in ids for n in self.nodes.values() for ids in n.acl.values()):
                    return 418  # the two ids' rights would merge
                self.rename(node.value, value)
        node.value = value
        return 200, None

    def rename(self, old, new):
        """A replaced ServerID: its rights in every ACL go to the new id."""
        for node in self.nodes.values():
            node.acl = {cmd: [new if i == old else i for i in ids] for cmd, ids in node.acl.items()}

    def replace_acl(self, who, path, text):
        node = self.find(path)
        if node is None:
            return 404
        if not self.acl_replace_allowed(who, path):
            return 425
        try:
            acl = m_parse(text)
        except Malformed:
            return 400
        if not path and acl.get("Add") != ["*"]:
            return 405
        node.acl = acl
        return 200, None

    def delete(self, who, path):
        if self.find(path) is None:
            return 404
        if not path:
            return 405
        doomed = self.subtree(path)
        if any(self.nodes[p].permanent for p in doomed):
            return 405
        if self.delete_denied(who, path) is not None:
            return 425
        # the ids of the accounts (./DMAcc/X) deleted: not of a lone ServerID leaf
        gone = [self.nodes[p].value for p in doomed if self.is_server_id(p) and p[:2] in doomed]
        for p in doomed:
            del self.nodes[p]
        for server_id in gone:
            self.forget(server_id)
        return 200, None

    def forget(self, server_id):
        """A deleted account's id leaves every ACL; an emptied command is dropped, or at the
        root becomes '*'."""
        for path, node in self.nodes.items():
            acl = {}
            for cmd, ids in node.acl.items():
                kept = [i for i in ids if i != server_id]
                if kept:
                    acl[cmd] = kept
                elif not path:
                    acl[cmd] = ["*"]
            node.acl = acl

    def execute(self, who, path):
        node = self.find(path)
        if node is None:
            return 404
        if not node.execable:
            return 405
        if not self.may(who, "Exec", path):
            return 425
        return 200, None

    def check(self, asker, server, cmd, path, acl_prop):
        """-> 200, (allowed, source path or None when the model leaves "from" open)."""
        if acl_prop and cmd not in ("Get", "Replace"):
            return 405
        target = path
        if cmd == "Add" and not acl_prop:
            if not path:
                return 405
            target = path[:-1]
        if self.find(target) is None:
            return 404
        if asker != server and not self.may(asker, "Get", target):
            return 425
        eff, src = self.effective(target)
        if cmd == "Delete":
            denied = self.delete_denied(server, target)
            return 200, (denied is None, src if denied is None else denied)
        if cmd == "Replace" and acl_prop:
            allowed = self.acl_replace_allowed(server, target)
            return 200, (allowed, None)
        return 200, (m_grants(eff, cmd, server), src)

    @staticmethod
    def is_server_id(path):
        return len(path) == 3 and path[0] == "DMAcc" and path[2] == "ServerID"


# --- strategies ---------------------------------------------------------------------------------

acl_dicts = st.dictionaries(
    st.sampled_from(CMDS),
    st.one_of(st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True), st.just(["*"])),
    min_size=1,
    max_size=5,
)

MALFORMED = ("Get=", "Get=*+A", "get=A", "Get=A&", "Get=A B", "Read=A", "Get=A&Get=*", "Get",
             "=A", "Add=A++B", "Get=A,B", "Exec=\u00e9")


@st.composite
def acl_texts(draw, acl=None):
    """Text for an ACL dict: entries in any order, sometimes a command split in two."""
    acl = draw(acl_dicts) if acl is None else acl
    entries = []
    for cmd, ids in acl.items():
        if len(ids) > 1 and draw(st.booleans()):
            cut = draw(st.integers(1, len(ids) - 1))
            entries.append(cmd + "=" + "+".join(ids[:cut]))
            entries.append(cmd + "=" + "+".join(ids[cut:]))
        else:
            entries.append(cmd + "=" + "+".join(ids))
    return "&".join(draw(st.permutations(entries)))


def uri_of(path, draw):
    if not path:
        return "."
    text = "/".join(path)
    return text if draw(st.booleans()) else "./" + text


# --- the agent side -----------------------------------------------------------------------------


class As:
    def __init__(self, principal):
        self.principal = principal


def _handler(tree, who, data):
    return 200, None


def build(draw):
    """The same random tree in the model and in the agent (as the device: tree.put)."""
    root_acl = draw(acl_dicts)
    root_acl["Add"] = ["*"]
    model = Model(root_acl)
    tree = Tree()
    tree.put(".", fmt="node", acl=draw(acl_texts(root_acl)), flags=1)
    # DMAcc, with an account per server id, each holding its ServerID
    dmacc = ("DMAcc",)
    model.nodes[dmacc] = MNode(True, draw(acl_dicts), permanent=True)
    tree.put("./DMAcc", fmt="node", acl=draw(acl_texts(model.nodes[dmacc].acl)), flags=1)
    for sid in draw(st.lists(st.sampled_from(IDS), unique=True, min_size=1, max_size=3)):
        acc = dmacc + ("x" + sid,)
        model.nodes[acc] = MNode(True, draw(acl_dicts))
        tree.put("./DMAcc/x" + sid, fmt="node", acl=draw(acl_texts(model.nodes[acc].acl)))
        model.nodes[acc + ("ServerID",)] = MNode(False, {}, sid)
        tree.put("./DMAcc/x%s/ServerID" % sid, sid, "chr")
    # a random subtree of small names
    for _ in range(draw(st.integers(4, 12))):
        interiors = [p for p, n in model.nodes.items() if n.interior and len(p) < 4]
        parent = draw(st.sampled_from(sorted(interiors)))
        path = parent + (draw(st.sampled_from(NAMES)),)
        if path in model.nodes:
            continue
        interior = draw(st.booleans())
        acl = draw(st.one_of(acl_dicts, st.just({})))
        permanent = draw(st.integers(0, 9)) == 0
        execable = draw(st.booleans())
        value = None if interior else draw(st.integers(-5, 5))
        model.nodes[path] = MNode(interior, acl, value, permanent, execable)
        uri = "./" + "/".join(path)
        if interior:
            tree.put(uri, fmt="node", acl=draw(acl_texts(acl)), flags=permanent and 1)
        else:
            tree.put(uri, value, "int", acl=draw(acl_texts(acl)), flags=permanent and 3)
        if execable:
            tree.on_exec(uri, _handler)
    return model, tree


def agent_state(tree):
    """{path: (interior, own ACL as a dict of id sets, value)} of the whole agent tree."""
    out = {}
    for uri, entry, _, _, _, _ in tree._walk(tree._root, ".", "", None):
        path = () if uri == "." else tuple(uri[2:].split("/"))
        if type(entry) is list:
            own, interior = entry[2], entry[1] == "node"
            value = None if interior else entry[0]
        else:
            own, interior, value = "", False, entry
        out[path] = (interior, _sets(m_parse(own)), value)
    return out


def model_state(model):
    return {p: (n.interior, _sets(n.acl), n.value) for p, n in model.nodes.items()}


def _sets(acl):
    return {cmd: frozenset(ids) for cmd, ids in acl.items()}


def _src(path):
    return "./" + "/".join(path) if path else "."


# --- the property -------------------------------------------------------------------------------

OPS = ("get", "get_acl", "acl_query", "add", "replace", "replace_acl", "delete", "exec", "check")


@settings(max_examples=examples(400), deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_agent_decisions_match_reference_model(data):
    draw = data.draw
    model, tree = build(draw)
    d = Dispatcher(tree)
    assert agent_state(tree) == model_state(model)
    for _ in range(draw(st.integers(5, 16))):
        op = draw(st.sampled_from(OPS))
        who = draw(st.sampled_from(IDS))
        known = sorted(model.nodes)
        path = draw(st.sampled_from(known))
        if draw(st.integers(0, 4)) == 0:  # somewhere new, maybe below a leaf or a missing node
            path = path + (draw(st.sampled_from(NAMES + ("z",))),)
        uri = uri_of(path, draw)
        req = {P.K_OP: P.OP_GET, P.K_URI: uri}
        if op == "get":
            want = model.get(who, path)
        elif op == "get_acl":
            req[P.K_URI] = uri + "?prop=ACL"
            want = model.get_acl(who, path)
        elif op == "acl_query":
            req[P.K_OP] = P.OP_ACL
            want = model.acl_query(who, path)
        elif op == "add":
            path = draw(st.sampled_from(known)) + (draw(st.sampled_from(NAMES + ("z",))),)
            req[P.K_URI] = uri_of(path, draw)
            interior = draw(st.booleans())
            value = draw(st.integers(-5, 5))
            req.update({P.K_OP: P.OP_ADD, P.K_VALUE: None if interior else value})
            if interior:
                req[P.K_FORMAT] = "node"
            want = model.add(who, path, interior, value)
        elif op == "replace":
            node = model.find(path)
            if node is not None and type(node.value) is str:
                value = draw(st.sampled_from(IDS + ("Z",)))
            else:
                value = draw(st.integers(-5, 5))
            req.update({P.K_OP: P.OP_REPLACE, P.K_VALUE: value})
            want = model.replace(who, path, value)
        elif op == "replace_acl":
            text = draw(st.one_of(acl_texts(), st.sampled_from(MALFORMED), st.just("")))
            req.update({P.K_OP: P.OP_REPLACE, P.K_URI: uri + "?prop=ACL", P.K_VALUE: text})
            want = model.replace_acl(who, path, text)
        elif op == "delete":
            req[P.K_OP] = P.OP_DELETE
            want = model.delete(who, path)
        elif op == "exec":
            req[P.K_OP] = P.OP_EXEC
            want = model.execute(who, path)
        else:
            server = draw(st.sampled_from(IDS))
            cmd = draw(st.sampled_from(CMDS))
            acl_prop = draw(st.integers(0, 3)) == 0
            if acl_prop:
                req[P.K_URI] = uri + "?prop=ACL"
            req.update({P.K_OP: P.OP_CHECK, P.K_SERVER: server, P.K_CMD: cmd})
            want = model.check(who, server, cmd, path, acl_prop)
        got = d.handle(As(who), req)
        status = want if type(want) is int else want[0]
        where = "%s as %s: %r -> %r" % (op, who, req, got)
        assert got[P.K_STATUS] == status, where
        if status == 200:
            result = want[1]
            if op == "get":
                assert got[P.K_VALUE] == result, where
            elif op == "get_acl":
                assert _sets(m_parse(got[P.K_VALUE])) == _sets(result), where
            elif op == "acl_query":
                own, eff, src = result
                assert _sets(m_parse(got[P.K_ACL])) == _sets(own), where
                assert _sets(m_parse(got[P.K_EFFECTIVE])) == _sets(eff), where
                assert got[P.K_FROM] == _src(src), where
            elif op == "check":
                allowed, src = result
                assert got[P.K_ALLOWED] is allowed, where
                if src is not None:
                    assert got[P.K_FROM] == _src(src), where
        assert agent_state(tree) == model_state(model), where
