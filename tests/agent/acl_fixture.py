"""The agent and the request helpers that the ACL rule tests (tests/agent/test_acl_*.py) share.

The rule tests are split in three modules so that each compiles within the 110k heap of the
device runtime.
"""

from agent import mo
from agent import proto as P
from agent.dispatch import Dispatcher
from agent.tree import Tree

_NO = object()
_D = [None]  # the dispatcher of the last _agent(): the helpers below talk to it
T_ACL = "Add=A&Delete=A&Get=A&Replace=A"


class _As:
    """The one thing the dispatcher asks of a session: whom the request speaks for."""

    def __init__(self, principal):
        self.principal = principal


def _agent(limits=None, accounts=("A", "B"), auth=False):
    """A tree with DevInfo, DevDetail, DMAcc (one account per id) and a test subtree ./T:
    ./T (T_ACL) / L (int 5), N (interior, empty ACL) / X (chr "x")."""
    tree = Tree(limits)
    accs = []
    for sid in accounts:
        acc = {"server_id": sid}
        if auth:
            acc["auth"] = {"secret": "s3cret-" + sid}
        accs.append(acc)
    mo.seed(tree, {"accounts": accs})
    mo.bind(tree)
    tree.put("./T", fmt="node", acl=T_ACL)
    tree.put("./T/L", 5, "int")
    tree.put("./T/N", fmt="node")
    tree.put("./T/N/X", "x", "chr")
    _D[0] = Dispatcher(tree)
    return tree, _D[0]


def _do(who, op, uri=None, value=_NO, fmt=None, server=None, cmd=None):
    req = {P.K_OP: op}
    if uri is not None:
        req[P.K_URI] = uri
    if value is not _NO:
        req[P.K_VALUE] = value
    if fmt is not None:
        req[P.K_FORMAT] = fmt
    if server is not None:
        req[P.K_SERVER] = server
    if cmd is not None:
        req[P.K_CMD] = cmd
    return _D[0].handle(_As(who), req)


def _get(who, uri):
    return _do(who, P.OP_GET, uri)


def val(who, uri):
    return _get(who, uri)[P.K_VALUE]


def _st(resp):
    return resp[P.K_STATUS]


def get_st(who, uri):
    return _st(_get(who, uri))


def add_st(who, uri, value=None, fmt=None):
    return _st(_do(who, P.OP_ADD, uri, value, fmt))


def rep_st(who, uri, value, fmt=None):
    return _st(_do(who, P.OP_REPLACE, uri, value, fmt))


def del_st(who, uri):
    return _st(_do(who, P.OP_DELETE, uri))


def exec_st(who, uri, data=None):
    return _st(_do(who, P.OP_EXEC, uri, data))


def _own(tree, uri):
    """A node's own ACL as the device itself sees it (no ACL check)."""
    entry = tree._locate(tree._parse(uri)[0])[0]
    return entry[2] if type(entry) is list else ""


def _check(who, server, cmd, uri):
    r = _do(who, P.OP_CHECK, uri, server=server, cmd=cmd)
    if r[P.K_STATUS] != 200:
        return r[P.K_STATUS]
    return r[P.K_ALLOWED], r[P.K_FROM]


def _aclq(who, uri):
    r = _do(who, P.OP_ACL, uri)
    if r[P.K_STATUS] != 200:
        return r[P.K_STATUS]
    return r[P.K_ACL], r[P.K_EFFECTIVE], r[P.K_FROM]
