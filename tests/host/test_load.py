"""Rule (issue 14): many TCP clients at once are all answered, each write lands once, and
every connect past the agent's link bounds is told so (420) and closed, never reset.
A short run here; `make load` runs 64 clients x 1,000 ops (host_tools/bench/load.py)."""

import pytest

from dmagent.host_tools.bench import load
from tests.host.agents import TEST_HEAP


@pytest.mark.parametrize("runtime,clients,ops,heap", [("cpython", 8, 60, None), ("micropython", 3, 20, TEST_HEAP["micropython"])])
def test_many_clients_all_answered_and_every_refusal_told(runtime, clients, ops, heap, tmp_path):
    result = load.run(runtime, clients, ops, heap or "110k", tmp_path)
    assert result["answered"] == clients * ops, result
    assert not result["failed"] and not result["refused"] and not result["wrong"], result
    assert result["reset"] == 0 and result["told_busy"] >= 1, result
