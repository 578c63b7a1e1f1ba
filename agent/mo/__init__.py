"""The standard management objects every agent carries: DevInfo, DevDetail, DMAcc.

seed() writes them from config on first boot only (state on flash wins afterwards; the
code is in agent.mo.first_boot, which seed() unloads once it has run); bind() attaches the code
behind live values and Exec nodes, on every boot, because code is never stored in the
tree. Config schema: docs/config.md.
"""

from ..mo import ext


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
    ext.bind(tree)


def install_standard(tree, config):
    seed(tree, config)
    bind(tree)
