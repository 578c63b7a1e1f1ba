"""tools/mutate.py picks, per module, the tests/agent files that can reach it (their imports,
followed through agent/), those importing it directly first; and it makes no mutant that
only swaps a falsy return for None."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("mutate", ROOT / "tools" / "mutate.py")
mutate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutate)


def test_each_target_runs_only_tests_that_reach_it_its_own_first():
    for module in mutate.TARGETS:
        picked = mutate.tests_for(module)
        agent_tests = [t for t in picked if t.startswith("tests/agent/")]
        assert agent_tests, module
        assert "tests/agent/test_cbor.py" not in picked  # reaches no target
        first = ROOT / agent_tests[0]
        assert module in mutate._imports(first) or not any(
            module in mutate._imports(ROOT / t) for t in agent_tests), (module, picked)
        assert picked[len(agent_tests):] == mutate.TARGETS[module]
    assert "tests/agent/test_store.py" in mutate.tests_for("agent/recovery.py")  # through store


def test_return_false_is_not_mutated_to_none_but_return_zero_is():
    src = "def f(x):\n    if x:\n        return False\n    return 0\n"
    whats = [(m.line, m.what) for m in mutate.mutants("t.py", src)[0]]
    assert (3, "return value dropped") not in whats and (3, "False -> True") in whats
    assert (4, "return value dropped") in whats
