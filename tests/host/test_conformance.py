"""The conformance suite against real agents: it passes on CPython and on the device runtime
(keyed, and without keys on an --insecure agent), and it catches an agent with one rule
broken on purpose: exactly the checks of that rule fail. The virtual board's run is in
tests/host/test_conformance_vboard.py (slow: `make conformance`).

The audit's open gaps (conformance_setup.KNOWN_GAPS) are failures the suite must report;
each is an xfail with its reason here, strict, so fixing one turns this file red until the
gap is taken off the list.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dmagent.host_tools import conformance
from dmagent.host_tools.conformance import report as rep
from tests.host import conformance_setup as S
from tests.host.agents import ROOT, RunningAgent, start_agent


DDF_GAPS = {name for name in S.KNOWN_GAPS if name.startswith("DM-TND DDF")}
WRONG_DDF_FAILS = "DM-TND DDF AccessType: Add under an interior node whose AccessType excludes Add is 405"


def _failed(report):
    assert report.error is None, report.error
    return {r.name for r in report.failed}


def _keyed(tmp_path, runtime):
    keys = S.key_files(tmp_path / "keys")
    agent = start_agent(tmp_path, runtime=runtime, config=S.config(), insecure=False,
                        extra=["--keys", str(tmp_path / "keys")])
    return agent, keys


@pytest.fixture(scope="module")
def cpython_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conf-cpython")
    agent, _ = _keyed(tmp, "cpython")
    try:
        yield conformance.run(agent.url, keys=S.keys(), confidential=["./DMAcc"], ddf=S.board_ddf(tmp))
    finally:
        agent.stop()


def test_suite_has_at_least_150_checks_each_named_with_its_source():
    checks = conformance.select()
    assert len(checks) >= 150
    sources = ("TND", "DM-", "omadm-rules", "protocol.md", "RFC 8949")
    assert all(c.name.startswith(sources) for c in checks), [c.name for c in checks if not c.name.startswith(sources)]
    assert len({c.name for c in checks}) == len(checks)


def test_suite_passes_on_cpython_with_keys_but_for_the_known_gaps(cpython_report):
    assert _failed(cpython_report) == set(S.KNOWN_GAPS), [
        (r.name, r.message) for r in cpython_report.failed if r.name not in S.KNOWN_GAPS]
    skipped = {r.name: r.message for r in cpython_report.results if r.outcome == "skip"}
    # Only what this device cannot offer: nobody may add a DMAcc account here.
    assert list(skipped) == ["omadm-rules DMAcc: an account whose ServerID duplicates another's is 418"], skipped
    hygiene = cpython_report.by_name()[conformance.HYGIENE]
    assert hygiene.outcome == "pass", hygiene.message
    print("cpython: %d checks in %.1fs" % (len(cpython_report.results), cpython_report.seconds))


@pytest.mark.parametrize("name", sorted(S.KNOWN_GAPS))
def test_known_gap_is_reported_as_a_failure(cpython_report, name):
    result = cpython_report.by_name()[name]
    if result.outcome == "fail":
        pytest.xfail("known gap (issue 13, part C): %s: %s" % (S.KNOWN_GAPS[name], result.message))
    pytest.fail("%s now passes: take it off conformance_setup.KNOWN_GAPS" % name)  # (none left: no cases)


def test_a_failure_reports_what_was_sent_and_received_and_junit_holds_every_check(tmp_path):
    # A DDF the device does not keep (./Board/Slots without Add): that check must fail.
    agent, _ = _keyed(tmp_path, "cpython")
    try:
        report = conformance.run(agent.url, keys=S.keys(), only="DM-TND DDF", ddf=S.wrong_board_ddf(tmp_path))
    finally:
        agent.stop()
    assert _failed(report) == {WRONG_DDF_FAILS}
    failed = report.failed[0]
    assert failed.exchanges and "->" in rep.describe(failed.exchanges[-1])
    xml = rep.junit_xml([report])
    import xml.etree.ElementTree as ET

    suite = ET.fromstring(xml).find("testsuite")
    assert int(suite.get("tests")) == len(report.results) == 4  # the three DDF checks, the hygiene check
    assert int(suite.get("failures")) == len(suite.findall("testcase/failure")) == 1


def test_suite_without_keys_on_an_insecure_agent_and_several_devices_at_once(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = S.plain_config()
    a = start_agent(tmp_path / "a", config=plain)
    b = start_agent(tmp_path / "b", config=plain)
    try:
        seen = set()
        reports = conformance.run_many([a.url, b.url], progress=lambda i, done, total, r: seen.add(i))
    finally:
        a.stop()
        b.stop()
    assert [r.error for r in reports] == [None, None] and seen == {0, 1}
    for report in reports:
        assert _failed(report) == set(S.KNOWN_GAPS) - DDF_GAPS
        skipped = [r for r in report.results if r.outcome == "skip"]
        assert all(r.message == "needs --key files" or "may not add accounts" in r.message or "--ddf" in r.message
                   for r in skipped), [(r.name, r.message) for r in skipped]


def test_cli_runs_the_suite_writes_junit_and_says_failures_in_its_exit_status(tmp_path):
    agent, keys = _keyed(tmp_path, "cpython")
    junit = tmp_path / "report.xml"
    try:
        args = [sys.executable, "-m", "dmagent.host_tools.cli", "--json", "test", "-d", agent.url, "--only", "ACL syntax",
                "--junit", str(junit)] + sum((["--key", str(k)] for k in keys), [])
        ok = subprocess.run(args, cwd=str(ROOT), capture_output=True, text=True, timeout=120)
        # a DDF the device does not keep: a failed check, exit status 1
        gaps = subprocess.run(args[:8] + ["DM-TND DDF", "--ddf", str(S.wrong_board_ddf(tmp_path))] + args[9:],
                              cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    finally:
        agent.stop()
    import json

    answer = json.loads(ok.stdout)
    assert ok.returncode == 0 and answer["status"] == "pass" and answer["error"] is None, ok.stdout + ok.stderr
    assert "<testsuite" in junit.read_text()
    assert gaps.returncode == 1 and json.loads(gaps.stdout)["status"] == "fail"
    bad = subprocess.run([sys.executable, "-m", "dmagent.host_tools.cli", "test", "-d", "tcp://127.0.0.1:1"],
                         cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr + bad.stdout


def test_suite_passes_on_the_device_runtime_with_keys(tmp_path):
    # A board's 110k, with this config's three accounts with addresses and three keys.
    S.key_files(tmp_path / "keys")
    agent = start_agent(tmp_path, runtime="micropython", config=S.config(), insecure=False, heap="110k",
                        extra=["--keys", str(tmp_path / "keys")])
    try:
        report = conformance.run(agent.url, keys=S.keys(), confidential=["./DMAcc"], timeout=4.0,
                                 ddf=S.board_ddf(tmp_path))
    finally:
        agent.stop()
    assert _failed(report) == set(S.KNOWN_GAPS) | set(S.DEVICE_RUNTIME_GAPS), [(r.name, r.message) for r in report.failed]
    print("device runtime: %d checks in %.1fs" % (len(report.results), report.seconds))


# --- an agent with one rule broken on purpose: exactly its checks fail ----------------------
BREAKS = {
    "whole-identifier matching": (
        "acl.py", "        if (j == start or acl[j - 1] == \"+\") and (j + n == end or acl[j + n] == \"+\"):",
        "        if True:",
        {"omadm-rules ACL syntax: ids match whole: Get=<p1>X grants nothing to <p1>",
         "omadm-rules ACL syntax: ids match whole: an id that is a prefix of <p1> grants nothing to it"}),
    "atomic rollback": (
        "dispatch.py", "            self.tree.rollback()\n        except Exception:  # the undo itself failed",
        "            self.tree.commit()\n        except Exception:  # the undo itself failed",
        None),
    "reply cache": (
        "session.py", "                cached = self.replies.get(scope, None, rid)", "                cached = None",
        {"protocol.md 3 request ids: a resent request id is answered from the cache, not run again",
         "protocol.md 3 request ids: the cached answer is the first answer, status and all"}),
    "deterministic maps": (
        "cbor.py", "        for key in _sorted_keys(obj):", "        for key in list(obj):",
        {"RFC 8949 4.2.1 deterministic encoding: every response map's keys in bytewise order"}),
    "bool format": (
        "formats.py", "    ok = type(value) is _CARRIER[fmt]\n",
        "    ok = type(value) is _CARRIER[fmt] or fmt == \"bool\" and type(value) is int\n",
        {"TND 7.7.2 Format bool: a value 1 that is not one is 415 and creates nothing"}),
}


def _broken_copy(tmp_path, name):
    """agent/ copied with one line changed; the file must hold the line exactly once."""
    path, old, new, _ = BREAKS[name]
    copy = tmp_path / "broken"
    shutil.copytree(ROOT / "agent", copy / "agent", ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "agent" / path
    text = target.read_text()
    assert text.count(old) == 1, (name, old)
    target.write_text(text.replace(old, new))
    return copy


def _serve_copy(tmp_path, copy):
    # dmagent.agent found in the copy first: the package's path takes it in ahead of the clone
    code = ("import dmagent; dmagent.__path__.insert(0, %r); import runpy; "
            "runpy.run_module('dmagent.host_tools.cli', run_name='__main__', alter_sys=True)" % str(copy))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    config = tmp_path / "config.json"
    import json

    config.write_text(json.dumps(S.plain_config()))
    log = open(tmp_path / "agent.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--tcp", "127.0.0.1:0", "--config", str(config),
                             "--insecure"], cwd=str(ROOT), stdout=subprocess.PIPE, stderr=log, text=True,
                            env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("serving "):
            return RunningAgent(proc, [line.split(None, 1)[1].strip()], tmp_path / "agent.log")
        if not line:
            break
    raise RuntimeError("broken agent did not start: " + (tmp_path / "agent.log").read_text())


ATOMIC_ROLLBACK = {
    "DM-Protocol Atomic: a failed Atomic rolls back an Add made before the failure",
    "DM-Protocol Atomic: a failed Atomic rolls back a Replace (the old value is back)",
    "DM-Protocol Atomic: a failed Atomic rolls back a Delete (the subtree is back, ACLs and all)",
    "DM-Protocol Atomic: an Atomic refused by the ACL half way changes nothing",
    "DM-Protocol Atomic: Copy may be an Atomic item and is rolled back with it",
    "DM-Protocol Sequence: an Atomic inside a Sequence is all or nothing on its own",
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_suite_catches_an_agent_with_one_rule_broken_exactly_there(tmp_path, name):
    copy = _broken_copy(tmp_path, name)
    agent = _serve_copy(tmp_path, copy)
    try:
        report = conformance.run(agent.url)
    finally:
        agent.stop()
    wanted = BREAKS[name][3] if BREAKS[name][3] is not None else ATOMIC_ROLLBACK
    failed = _failed(report) - set(S.KNOWN_GAPS) - {conformance.HYGIENE}
    assert failed == wanted, sorted(failed ^ wanted)


def test_the_broken_copy_really_is_what_serves(tmp_path):
    # The break must be in the process that answered, not in this one's import of agent/.
    copy = _broken_copy(tmp_path, "deterministic maps")
    assert "for key in list(obj):" in (copy / "agent" / "cbor.py").read_text()
    assert "for key in list(obj):" not in (ROOT / "agent" / "cbor.py").read_text()
    assert Path(conformance.__file__).is_relative_to(ROOT)
