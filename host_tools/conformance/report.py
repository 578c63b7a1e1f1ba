"""Reports of suite runs: a rich summary (per group, per device), the failures with what was
sent and received, JUnit XML for CI, and a JSON-able form."""

import xml.etree.ElementTree as ET

from rich.table import Table

from dmagent.agent import proto as P

OP_NAMES = getattr(P, "OP_NAMES", {})


def describe(entry):
    """One recorded exchange as a line: who, what was sent, what came back."""
    who, sent, got = entry
    if who == "raw":
        return "raw %s -> %s" % (bytes(sent).hex(" ")[:120], [(k, bytes(b).hex()[:80]) for k, b in got])
    if isinstance(sent, dict):
        sent = dict(sent)
        op = sent.get(P.K_OP)
        sent = "%s %r" % (OP_NAMES.get(op, op), {k: v for k, v in sent.items() if k not in (P.K_ID, P.K_OP)})
    return "as %s: %s -> %r" % (who or "anonymous", sent, got)


def summary_table(reports):
    table = Table(title="conformance summary")
    table.add_column("device")
    table.add_column("agent")
    table.add_column("checks", justify="right")
    table.add_column("pass", justify="right", style="green")
    table.add_column("fail", justify="right", style="red")
    table.add_column("skip", justify="right", style="yellow")
    table.add_column("seconds", justify="right")
    for r in reports:
        agent = "%s %s" % (r.info.get("agent", "?"), r.info.get("runtime", "")) if r.info else "-"
        if r.error:
            table.add_row(r.url, agent, "-", "-", "-", "-", "%.1f" % r.seconds)
            continue
        table.add_row(r.url, agent, str(len(r.results)), str(r.count("pass")), str(r.count("fail")),
                      str(r.count("skip")), "%.1f" % r.seconds)
    return table


def group_table(report):
    table = Table(title="%s by part of the spec" % report.url)
    table.add_column("group")
    for name in ("pass", "fail", "skip"):
        table.add_column(name, justify="right")
    groups = {}
    for r in report.results:
        row = groups.setdefault(r.group, {"pass": 0, "fail": 0, "skip": 0})
        row[r.outcome] += 1
    for group, row in groups.items():
        table.add_row(group, str(row["pass"]), "[red]%d[/]" % row["fail"] if row["fail"] else "0", str(row["skip"]))
    return table


def print_report(console, reports, verbose=False):
    for report in reports:
        if report.error:
            console.print("[red]%s: the suite could not run:[/] %s" % (report.url, report.error))
            continue
        console.print(group_table(report))
        for r in report.results:
            if r.outcome == "fail":
                console.print("[red]FAIL[/] %s\n     %s" % (r.name, r.message), markup=True, highlight=False)
                for entry in r.exchanges[-4:]:
                    console.print("       " + describe(entry), markup=False, highlight=False)
            elif verbose:
                style = "green" if r.outcome == "pass" else "yellow"
                console.print("[%s]%s[/] %s %s" % (style, r.outcome.upper(), r.name,
                                                  ("(" + r.message + ")") if r.message else ""))
    console.print(summary_table(reports))


def junit_xml(reports):
    """One testsuite per device, one testcase per check: failures with the exchanges."""
    root = ET.Element("testsuites", name="dmagent conformance")
    for report in reports:
        suite = ET.SubElement(root, "testsuite", name=report.url, tests=str(len(report.results)),
                              failures=str(report.count("fail")), skipped=str(report.count("skip")),
                              errors="1" if report.error else "0", time="%.3f" % report.seconds)
        if report.error:
            case = ET.SubElement(suite, "testcase", name="suite setup", classname="setup")
            ET.SubElement(case, "error", message=report.error)
        for r in report.results:
            case = ET.SubElement(suite, "testcase", name=r.name, classname=r.group, time="%.3f" % r.seconds)
            if r.outcome == "fail":
                node = ET.SubElement(case, "failure", message=r.message)
                node.text = "\n".join(describe(e) for e in r.exchanges)
            elif r.outcome == "skip":
                ET.SubElement(case, "skipped", message=r.message)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def as_json(reports):
    return [{"device": r.url, "error": r.error, "seconds": round(r.seconds, 3),
             "passed": r.count("pass"), "failed": r.count("fail"), "skipped": r.count("skip"),
             "checks": [{"name": c.name, "group": c.group, "outcome": c.outcome, "message": c.message,
                         "exchanges": [describe(e) for e in c.exchanges]} for c in r.results]}
            for r in reports]
