"""The AES backends this runtime has, for tests and benches: the agent itself only ever asks
agent.hal for the first one (backend_name), so a board never loads this.
"""

from . import BACKENDS, _present


def aes_backends():
    """Names of the AES backends this runtime has, in the order aes_block tries them."""
    names = []
    for name in BACKENDS:
        if _present(name):
            names.append(name)
    return names
