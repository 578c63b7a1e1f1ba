"""Run the checks against one device, or several at once (a thread each).

The suite works inside a scratch folder it makes under the root and removes, and proves it
left the tree as it found it: a digest of every node p1 can see (URI, format, value, own
ACL) before and after. A value neither principal may Replace (a live counter) is not the
suite's doing and is left out of the comparison, and says so.
"""

import hashlib
import threading
import time

from dmagent.agent import proto as P
from dmagent.host_tools.client.device import DeviceError, DeviceTimeout, LinkError
from dmagent.host_tools.conformance.probe import Probe, SetupError, Target
from dmagent.host_tools.conformance.registry import Failed, Skipped, select

HYGIENE = "Conformance suite: the device's tree is as the suite found it (digest of every node before and after)"


class Result:
    def __init__(self, name, group, outcome, seconds, message="", exchanges=()):
        self.name = name
        self.group = group
        self.outcome = outcome  # "pass", "fail", "skip"
        self.seconds = seconds
        self.message = message
        self.exchanges = list(exchanges)

    def __repr__(self):
        return "<%s %s>" % (self.outcome, self.name)


class Report:
    def __init__(self, url):
        self.url = url
        self.results = []
        self.error = None  # the suite could not run at all
        self.seconds = 0.0
        self.info = {}

    def count(self, outcome):
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def failed(self):
        return [r for r in self.results if r.outcome == "fail"]

    @property
    def ok(self):
        return self.error is None and not self.failed

    def by_name(self):
        return {r.name: r for r in self.results}


def run(url, keys=(), names=("ServerA", "ServerB"), only=None, timeout=2.0, confidential=(),
        progress=None, ddf=None):
    """Run the selected checks against url -> Report. progress(done, total, result) after each.
    ddf: a DDF file of the device (its AccessType and Occurrence are then checked)."""
    checks = select(only)
    report = Report(url)
    start = time.monotonic()
    described = None
    if ddf is not None:
        from dmagent.host_tools import ddf as ddf_lib

        doc = ddf_lib.read_file(ddf)  # DDFError (a ValueError) for a bad file: the caller's mistake
        described = (ddf_lib.to_config(doc)["nodes"], ddf_lib.child_limits(doc))
    target = Target(url, keys, names, timeout, confidential, described)
    try:
        target.connect()
    except (SetupError, LinkError) as exc:
        report.error = str(exc)
        target.close()
        return report
    report.info = target.info
    phase = "the snapshot before"
    try:
        before = _patiently(snapshot, target)
        phase = "making the scratch folder"
        scratch = _patiently(_make_scratch, target)
        phase = "the checks"
        for done, chk in enumerate(checks, 1):
            result = _run_one(target, scratch, chk)
            report.results.append(result)
            if progress:
                progress(done, len(checks) + 1, result)
        phase = "removing the scratch folder"
        leftover = _patiently(_remove_scratch, target, scratch)
        phase = "the snapshot after"
        after = _patiently(snapshot, target)
        result = _hygiene(target, before, after, leftover)
        report.results.append(result)
        if progress:
            progress(len(checks) + 1, len(checks) + 1, result)
    except (SetupError, LinkError, DeviceError) as exc:
        report.error = "%s: %s (in %s)" % (type(exc).__name__, exc, phase)
    finally:
        target.close()
        report.seconds = time.monotonic() - start
    return report


def run_many(urls, progress=None, **options):
    """Run against every url concurrently -> [Report] in the order given."""
    reports = [None] * len(urls)

    def one(i, url):
        def tick(done, total, result):
            if progress:
                progress(i, done, total, result)

        reports[i] = run(url, progress=tick, **options)

    threads = [threading.Thread(target=one, args=(i, url), daemon=True) for i, url in enumerate(urls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return reports


def _patiently(fn, target, *args):
    """fn(target, ...), again after a pause if the device was short of memory (420) or
    silent: what the suite itself needs must not fail on a board's momentary heap."""
    for attempt in range(4):
        try:
            return fn(target, *args)
        except (DeviceError, DeviceTimeout) as exc:
            if attempt == 3 or getattr(exc, "status", P.S_DEVICE_FULL) != P.S_DEVICE_FULL:
                raise
            target.forget_session()
            time.sleep(0.5)


def _run_one(target, scratch, chk):
    probe = Probe(target, scratch)
    start = time.monotonic()
    outcome, message = "pass", ""
    try:
        if "keys" in chk.needs and not target.keyed:
            raise Skipped("needs --key files")
        if "ddf" in chk.needs and not target.ddf:
            raise Skipped("give --ddf FILE: the device's own DDF says what to enforce")
        if "insecure" in chk.needs and target.keyed:
            raise Skipped("for an --insecure agent without keys")
        chk.fn(probe)
    except Failed as exc:
        outcome, message = "fail", str(exc) or "failed"
    except Skipped as exc:
        outcome, message = "skip", str(exc)
    except DeviceTimeout as exc:
        outcome, message = "fail", "no answer: %s" % exc
        target.forget_session()
    except DeviceError as exc:
        outcome, message = "fail", "refused: %s" % exc
        target.forget_session()
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        outcome, message = "fail", "unexpected answer (%s: %s)" % (type(exc).__name__, exc)
    try:
        problem = probe.cleanup()
    except (DeviceError, LinkError) as exc:
        problem = str(exc)
        target.forget_session()
    if problem and outcome != "fail":
        outcome, message = "fail", "cleanup: " + problem
    elif problem:
        message += " (cleanup: %s)" % problem
    return Result(chk.name, chk.group, outcome, time.monotonic() - start, message,
                  probe.log[-8:] if outcome == "fail" else ())


def _make_scratch(target):
    dev = target.as_(target.servers[0])
    uri = "./Conformance%06x" % (target.next_id() & 0xFFFFFF)
    dev.add(uri, interior=True)
    dev.set_acl(uri, "&".join("%s=%s" % (c, target.servers[0]) for c in P.COMMANDS))
    return uri


def _remove_scratch(target, scratch):
    target.forget_session()
    dev = target.as_(target.servers[0])
    try:
        dev.delete(scratch)
    except DeviceError as exc:
        if exc.status != P.S_NOT_FOUND:
            return "the scratch folder %s could not be removed: %s" % (scratch, exc)
    return None


def snapshot(target):
    """{uri: (format, value, own ACL)} of every node p1 may Get."""
    dev = target.as_(target.servers[0])
    nodes = {}
    try:
        for uri, value in dev.list(".", data=True):
            nodes[uri] = [None, value, None]
    except DeviceError as exc:  # StructData refused (a confidential subtree): leaf by leaf
        if exc.status != P.S_FORBIDDEN:
            raise
        nodes = {uri: [None, None, None] for uri in dev.list(".")}
        for uri, entry in nodes.items():
            try:
                entry[1] = dev.get(uri)
            except DeviceError as exc:
                entry[1] = "(%d)" % exc.status
    for uri, entry in nodes.items():
        try:
            entry[0] = dev.get(uri, "Format")
            entry[2] = dev.acl(uri)[0]
        except DeviceError as exc:
            entry[2] = "(%d)" % exc.status
    return {uri: tuple(v) for uri, v in nodes.items()}


def digest(nodes):
    h = hashlib.sha256()
    for uri in sorted(nodes):
        h.update(repr((uri,) + tuple(nodes[uri])).encode())
    return h.hexdigest()[:16]


def _hygiene(target, before, after, leftover):
    start = time.monotonic()
    changed = sorted(u for u in set(before) | set(after) if before.get(u) != after.get(u))
    live = []
    dev = target.as_(target.servers[0])
    for uri in list(changed):
        old, new = before.get(uri), after.get(uri)
        if old and new and old[0] == new[0] and old[2] == new[2] and _nobody_may_replace(target, dev, uri):
            live.append(uri)
            changed.remove(uri)
    message = ""
    if leftover:
        message = leftover
    if changed:
        message = (message + "; " if message else "") + "changed: " + ", ".join(
            "%s %r -> %r" % (u, before.get(u), after.get(u)) for u in changed[:6])
    outcome = "fail" if message else "pass"
    if not message and live:
        message = "live values left out: " + ", ".join(live)
    message = "digest %s -> %s%s" % (digest(before), digest(after), (": " + message) if message else "")
    return Result(HYGIENE, "suite", outcome, time.monotonic() - start, message)


def _nobody_may_replace(target, dev, uri):
    for server in target.servers:
        try:
            if dev.check(uri, server, P.CMD_REPLACE)[0]:
                return False
        except DeviceError:
            return False
    return True
