"""tools/mutate.py (`make mutate`): every mutant it makes of a key module is valid Python that
differs from the original in exactly the place it names, so a survivor is a real gap."""

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("mutate", ROOT / "tools" / "mutate.py")
mutate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutate)


def test_every_mutant_of_every_target_parses_and_changes_its_line():
    for path in mutate.TARGETS:
        source = (ROOT / path).read_text()
        found, _ = mutate.mutants(path, source)
        assert found, path
        before = source.splitlines()
        for m in found:
            after_src = m.apply(source)
            ast.parse(after_src)
            after = after_src.splitlines()
            changed = [i + 1 for i, (a, b) in enumerate(zip(before, after)) if a != b]
            assert after_src != source and changed and changed[0] == m.line, m.key()


def test_pragma_lines_are_skipped_and_counted():
    src = "def f(x):\n    return x == 1  # pragma: no mutate (equivalent)\n\ndef g(x):\n    return x == 2\n"
    found, skipped = mutate.mutants("t.py", src)
    assert skipped >= 1 and all(m.line == 5 for m in found) and found


def test_a_pragma_naming_a_mutant_skips_only_that_one():
    src = "def f(x):\n    return x - 1 == 0  # pragma: no mutate 0 -> 1 (why)\n"
    found, skipped = mutate.mutants("t.py", src)
    whats = [m.what for m in found]
    assert skipped == 1 and "0 -> 1" not in whats and "1 -> 2" in whats and "Sub -> Add" in whats
