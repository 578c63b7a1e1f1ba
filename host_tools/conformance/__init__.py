"""The conformance suite: checks any dmagent device, rule by rule, against the protocol,
omadm-rules.md and the standard objects. A library first (`run`, `run_many`, `CHECKS`);
`dmagent test` prints its reports. A failed check is the device's fault, never the suite's:
a check that cannot run on a device (no keys, one principal) is skipped and says why.
"""

from dmagent.host_tools.conformance.registry import CHECKS, Failed, Skipped, check, select
from dmagent.host_tools.conformance.runner import HYGIENE, Report, Result, run, run_many

__all__ = ["CHECKS", "Failed", "Skipped", "check", "select", "run", "run_many", "Report",
           "Result", "HYGIENE"]
