"""The standard management objects every agent carries: DevInfo, DevDetail, DMAcc.

seed() writes them from config on first boot only (state on flash wins afterwards; the
code is in agent.mo.first_boot, which seed() unloads once it has run); bind() attaches the code
behind live values and Exec nodes (agent.mo.ext) on every boot, because code is never stored
in the tree. Boot only: the agent unloads this module after boot, and a board loads it
again for add_repl(). Config schema: docs/config.md.
"""

from ..mo import ext
from ..nodes import PERMANENT, READONLY

REPL = "./DevDetail/Ext/Repl"


def seed(tree, config):
    """Install DevInfo, DevDetail, DMAcc and config's extra nodes and ACLs, as the device."""
    from .. import unload
    from ..mo import first_boot

    try:
        first_boot.seed(tree, config)
    finally:
        unload(".mo.first_boot")  # never needed again: its room is the tree's now


def bind(tree):
    """Code behind the standard nodes; run on every boot, after the tree is loaded."""
    if tree.exists("./DevDetail/Ext/Uptime"):
        tree.bind("./DevDetail/Ext/Uptime", read=ext.uptime)
    if tree.exists("./DevDetail/Ext/Echo"):
        tree.on_exec("./DevDetail/Ext/Echo", ext.echo)


def add_repl(tree, handler, owners=()):
    """The Repl node, bound to the board's handler: its Exec hands the console to the REPL,
    which reads every key file, so it is for owners only (a rule of the dispatcher, not of
    its ACL or its handler: ext.OWNER_ONLY). Its ACL is made afresh at every boot from
    security.owners (not journaled): it shows the rule, the dispatcher enforces it."""
    acl = "Exec=" + "+".join(owners) + "&Get=*" if owners else "Get=*"
    if tree.exists(REPL):
        tree.set_acl(REPL, acl)
    elif tree.exists("./DevDetail/Ext"):
        tree.put(REPL, "", "chr", acl=acl, flags=PERMANENT | READONLY)
    else:
        return
    tree.on_exec(REPL, handler)
