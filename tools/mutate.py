"""Mutation testing of the agent's key modules (`make mutate`): does a test fail when the code
behind a key claim is broken by one small change?

Each mutant is one edit at one place (a comparison or boolean flipped, a constant moved by
one, a call statement dropped, a return value lost, ...), made in a scratch copy of the
project, never in the working tree. The module's tests run against it on CPython; a mutant is
killed when they fail or time out. A mutant that survives is listed with its line: either a
test is missing, or the edit is equivalent (then mark the line `# pragma: no mutate` with a
reason, and it is counted as skipped).

    python tools/mutate.py                      # every module in TARGETS, report + score
    python tools/mutate.py --module agent/acl.py --jobs 2 --sample 40 --seed 1
"""

import argparse
import ast
import concurrent.futures as cf
import functools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / ".cache" / "mutate" / "report.json"
PRAGMA = "pragma: no mutate"

# module -> tests beyond tests/agent that stand behind its claims (CPython; must pass unmutated).
# From tests/agent only the files that import the module (directly or through other agent
# modules) are run: a file that cannot reach it cannot kill its mutants, only slow each run.
TARGETS = {
    "agent/store.py": ["tests/host/test_store_sync_order.py", "tests/host/test_store_leaks.py",
                       "tests/host/test_store_file_size_limit.py"],
    "agent/compaction.py": ["tests/host/test_store_sync_order.py", "tests/host/test_store_leaks.py",
                            "tests/host/test_store_file_size_limit.py"],
    "agent/journal.py": [],
    "agent/recovery.py": ["tests/host/test_store_sync_order.py", "tests/host/test_store_leaks.py",
                          "tests/host/test_store_file_size_limit.py"],
    # session's sealed paths end to end, on CPython only (a MicroPython runtime may run the
    # firmware's frozen copy, not the mutant), the fast cases:
    "agent/session.py": ["tests/host/test_host_secure.py"] + [
        "tests/host/test_session_holes.py::%s[cpython]" % name for name in (
            "test_plain_hello_does_not_clear_a_sealed_sessions_replies",
            "test_a_gateway_gets_each_servers_own_decision_for_the_same_request_id",
            "test_a_write_whose_answer_is_lost_with_its_connection_runs_exactly_once",
            "test_write_replies_survive_a_restart",
            "test_hs4_is_bound_to_the_handshake")] + [
        "tests/host/test_security_e2e.py::test_gateway_acts_for_its_listed_server_only[cpython]"],
    "agent/secure.py": ["tests/host/test_host_secure.py"],
    "agent/acl.py": [],
}


@functools.lru_cache(maxsize=None)  # each file is read once per run, whichever test asks
def _imports(path, root=ROOT):
    """The agent/ and tests/agent/ modules one file imports anywhere in it, as paths: absolute
    (`agent.x`, `dmagent.agent.x`) and relative (`from . import x` inside agent/)."""
    out = set()
    package = path.resolve().parent.relative_to(root.resolve()).parts if path.is_absolute() else path.parent.parts
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative to the file's package
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(list(base) + ([module] if module else []))
            if module:
                names = [module] + ["%s.%s" % (module, a.name) for a in node.names]
        for name in names:
            if name.startswith("dmagent."):
                name = name[len("dmagent."):]
            rel = Path(*name.split(".")).with_suffix(".py")
            if name.split(".")[0] in ("agent", "tests") and (root / rel).is_file():
                out.add(rel.as_posix())
    return out


def tests_for(module, root=ROOT):
    """The tests/agent files whose import closure reaches module, plus TARGETS' extras; those
    that import it directly first, then the narrower ones (pytest -x stops at the first
    failure, and most kills come from the module's own tests)."""
    direct, picked = [], []
    for test in sorted((root / "tests" / "agent").glob("test_*.py")):
        seen, todo = set(), [test.relative_to(root).as_posix()]
        while todo:
            cur = todo.pop()
            if cur not in seen:
                seen.add(cur)
                todo.extend(_imports(root / cur, root) - seen)
        if module in seen:
            rel = test.relative_to(root).as_posix()
            (direct if module in _imports(test, root) else picked).append((len(seen), rel))
    return [rel for _, rel in sorted(direct) + sorted(picked)] + TARGETS[module]

_COMPARE_SWAP = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE,
    ast.LtE: ast.Gt, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
               ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.Mult: ast.FloorDiv}


# Words every mutant's description holds one of: a pragma with none of them names no mutant.
_WHATS = (" -> ", " <-> ", "drop not", "augmented ", "return value dropped", "call dropped",
          "condition negated")


class Mutant:
    def __init__(self, path, node, replacement, what):
        self.path = path
        self.line = node.lineno
        self.span = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
        self.replacement = replacement
        self.what = what

    def apply(self, source):
        lines = source.splitlines(keepends=True)
        l0, c0, l1, c1 = self.span
        # ast offsets are in UTF-8 bytes; the agent's sources are ASCII where it matters
        head = "".join(lines[: l0 - 1]) + lines[l0 - 1][:c0]
        tail = lines[l1 - 1][c1:] + "".join(lines[l1:])
        return head + self.replacement + tail

    def key(self):
        return "%s:%d %s" % (self.path, self.line, self.what)


def _copy(expr):
    return ast.parse(ast.unparse(expr), mode="eval").body


def _pragmas(source):
    """line -> the text after `pragma: no mutate` on it. A pragma that names mutants ("0 -> 1",
    "Sub -> Add", as --list shows them) skips only those; one that names none, its whole line."""
    return {i + 1: line.split(PRAGMA, 1)[1] for i, line in enumerate(source.splitlines()) if PRAGMA in line}


def _docstring_nodes(tree):
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0]))
    return out


def _in_import_fallback(tree):
    """Lines of `try: from micropython import const / except ImportError: def const` shims."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers
        ):
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def mutants(path, source):
    """Every mutant of one module, in source order; (mutants, skipped by pragma)."""
    tree = ast.parse(source)
    pragmas = _pragmas(source)
    fallback = _in_import_fallback(tree)
    docstrings = _docstring_nodes(tree)
    found, skipped = [], 0

    def add(node, new, what):
        nonlocal skipped
        if node.lineno in fallback:
            return
        if node.lineno in pragmas:
            named = pragmas[node.lineno]
            if what in named or not any(w in named for w in _WHATS):
                skipped += 1
                return
        found.append(Mutant(path, node, new, what))

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE_SWAP:
            m = _copy(node)
            m.ops = [_COMPARE_SWAP[type(node.ops[0])]()]
            add(node, ast.unparse(m), "%s -> %s" % (type(node.ops[0]).__name__, type(m.ops[0]).__name__))
        elif isinstance(node, ast.BoolOp):
            m = _copy(node)
            m.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            add(node, "(%s)" % ast.unparse(m), "and <-> or")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            add(node, "(%s)" % ast.unparse(node.operand), "drop not")
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAP:
            m = _copy(node)
            m.op = _BINOP_SWAP[type(node.op)]()
            add(node, "(%s)" % ast.unparse(m), "%s -> %s" % (type(node.op).__name__, type(m.op).__name__))
        elif isinstance(node, ast.AugAssign) and type(node.op) in (ast.Add, ast.Sub):
            m = ast.AugAssign(target=node.target, op=ast.Sub() if isinstance(node.op, ast.Add) else ast.Add(),
                              value=node.value)
            add(node, ast.unparse(m), "augmented %s flipped" % type(node.op).__name__)
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            add(node, repr(not node.value), "%r -> %r" % (node.value, not node.value))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            add(node, repr(node.value + 1), "%d -> %d" % (node.value, node.value + 1))
        elif isinstance(node, ast.Return) and node.value is not None and not (
            # None, and False -> None (callers test truth; the bool flip covers it): no signal
            isinstance(node.value, ast.Constant) and node.value.value in (None, False)
            and type(node.value.value) is not int
        ):
            add(node, "return None", "return value dropped")
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and id(node) not in docstrings:
            add(node, "pass", "call dropped: %s" % ast.unparse(node.value.func))
        elif isinstance(node, (ast.If, ast.While)) and not isinstance(node.test, (ast.Compare, ast.BoolOp, ast.UnaryOp)):
            add(node.test, "(not %s)" % ast.unparse(node.test), "condition negated")
        elif isinstance(node, ast.Break):
            add(node, "continue", "break -> continue")
    found.sort(key=lambda m: m.span)
    return found, skipped


def _project_files():
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return [f for f in out if (ROOT / f).is_file()]


def _make_worker(base, i):
    """A scratch copy of the project for one worker; .venv and .cache are linked, not copied."""
    wdir = base / ("w%d" % i)
    for rel in _project_files():
        dst = wdir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst)
    for shared in (".venv", ".cache"):
        if (ROOT / shared).exists():
            os.symlink(ROOT / shared, wdir / shared)
    return wdir


def _run_tests(wdir, tests, timeout):
    env = dict(os.environ, PYTHONPATH=str(wdir), PYTHONDONTWRITEBYTECODE="1")
    env.pop("DMAGENT_FUZZ", None)
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "--hypothesis-seed=0"] + tests
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=wdir, env=env, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, time.monotonic() - start
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start


def run_module(path, tests, workers, sample, seed, log):
    source = (ROOT / path).read_text()
    found, skipped = mutants(path, source)
    chosen = found
    if sample and len(found) > sample:
        chosen = sorted(random.Random(seed).sample(found, sample), key=lambda m: m.span)
    code, base_time = _run_tests(workers[0], tests, timeout=600)
    if code != 0:
        raise SystemExit("mutate: the tests of %s fail unmutated (exit %s): fix them first" % (path, code))
    timeout = max(20.0, base_time * 4)
    results = []
    pending = list(chosen)

    def one(wdir, m):
        target = wdir / path
        target.write_text(m.apply(source))
        try:
            rc, took = _run_tests(wdir, tests, timeout)
        finally:
            target.write_text(source)
        return m, rc, took

    with cf.ThreadPoolExecutor(len(workers)) as pool:
        free = list(workers)
        futures = {}
        while pending or futures:
            while pending and free:
                w = free.pop()
                m = pending.pop(0)
                futures[pool.submit(one, w, m)] = w
            done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
            for f in done:
                free.append(futures.pop(f))
                m, rc, took = f.result()
                killed = rc != 0
                results.append({"line": m.line, "what": m.what, "killed": killed,
                                "how": "timeout" if rc == "timeout" else "exit %s" % rc, "seconds": round(took, 1)})
                log("  %s %s:%d %s" % ("killed  " if killed else "SURVIVED", path, m.line, m.what))
    results.sort(key=lambda r: r["line"])
    killed = sum(r["killed"] for r in results)
    return {"module": path, "tests": tests, "mutants": len(found), "tried": len(results), "killed": killed,
            "skipped_by_pragma": skipped, "score": round(100.0 * killed / len(results), 1) if results else 100.0,
            "survivors": [r for r in results if not r["killed"]]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", action="append", help="one of TARGETS (repeatable); default all")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--sample", type=int, default=0, help="at most N mutants per module, chosen by --seed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-score", type=float, default=90.0, help="exit 1 if a module scores below this")
    ap.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    args = ap.parse_args(argv)
    modules = args.module or list(TARGETS)
    for m in modules:
        if m not in TARGETS:
            ap.error("%s is not a target: %s" % (m, ", ".join(TARGETS)))
    if args.list:
        for m in modules:
            found, skipped = mutants(m, (ROOT / m).read_text())
            for mu in found:
                print(mu.key())
            print("# %s: %d mutants, %d skipped by pragma" % (m, len(found), skipped))
        return 0
    base = Path(tempfile.mkdtemp(prefix="dmagent-mutate-"))
    try:
        workers = [_make_worker(base, i) for i in range(max(1, args.jobs))]
        report = []
        for m in modules:
            tests = tests_for(m, workers[0])  # the copy's tests: the tree may change meanwhile
            print("mutate: %s against %s" % (m, " ".join(tests)), flush=True)
            report.append(run_module(m, tests, workers, args.sample, args.seed,
                                     lambda s: print(s, flush=True)))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=1))
    print("\n%-22s %8s %6s %7s %7s" % ("module", "mutants", "tried", "killed", "score"))
    low = False
    for r in report:
        print("%-22s %8d %6d %7d %6.1f%%" % (r["module"], r["mutants"], r["tried"], r["killed"], r["score"]))
        low |= r["score"] < args.min_score
    print("report: %s" % REPORT.relative_to(ROOT))
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
