"""OMA DM Device Description Framework files: import one into the agent's initial-tree
config, export the live tree (or a config) as one. Parsing refuses entity declarations
(XXE, billion laughs) and checks the DDF DTD; each error has a line and a column.
"""

from dmagent.host_tools.ddf.convert import STANDARD, child_limits, from_config, from_device, read_file, to_config, to_ddf
from dmagent.host_tools.ddf.model import DDFError, parse

__all__ = ["DDFError", "parse", "read_file", "to_config", "to_ddf", "from_config", "from_device", "child_limits",
           "STANDARD"]
