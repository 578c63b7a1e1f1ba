"""TND 7.7.2 Format: each format takes the values it names (protocol.md 3 says how each
travels) and refuses others with 415, changing nothing."""

from dmagent.agent import proto as P
from dmagent.host_tools.conformance.registry import check

G = "formats"

GOOD = [
    ("int", 21), ("int", -5), ("float", 2.5), ("bool", True), ("chr", "text \u00fc"), ("bin", b"\x00\xff"),
    ("b64", b"\x01\x02"), ("null", None), ("xml", "<a/>"), ("date", "2024-05-31"),
    ("time", "12:30:00Z"),
]
BAD = [
    ("int", "21"), ("int", 1.5), ("bool", 1), ("chr", b"bytes"), ("bin", "text"), ("float", "2.5"),
    ("null", 1), ("xml", 5), ("date", "31.05.2024"), ("time", "noon"),
]


def _good(fmt, value):
    def run(t):
        d = t.dir()
        t.leaf(d + "/L", value, fmt)
        resp = t.expect(t.get(d + "/L"), 200)
        t.equal((resp.get(P.K_VALUE), resp.get(P.K_FORMAT)), (value, fmt), "read back")
    return run


def _bad(fmt, value):
    def run(t):
        d = t.dir()
        t.expect(t.add(d + "/L", value, fmt), 415)
        t.expect(t.get(d + "/L"), 404, what="nothing was created")
    return run


for _fmt, _value in GOOD:
    check("TND 7.7.2 Format %s: a valid value %r is stored and read back as it was" % (_fmt, _value), G)(
        _good(_fmt, _value))
for _fmt, _value in BAD:
    check("TND 7.7.2 Format %s: a value %r that is not one is 415 and creates nothing" % (_fmt, _value), G)(
        _bad(_fmt, _value))


@check("TND 7.7.2 Format: an unknown format name is 415", G)
def unknown_format(t):
    d = t.dir()
    t.expect(t.add(d + "/L", b"x", "blob"), 415)


@check("TND 7.7.2 Format: Replace with another format changes the leaf's format", G)
def replace_format(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.replace(d + "/L", "one", "chr"), 200)
    t.equal(t.value(d + "/L?prop=Format"), "chr", "Format")


@check("TND 7.7.2 Format: a leaf cannot become interior by Replace (format node is 415)", G)
def replace_to_node(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.replace(d + "/L", None, "node"), 415, 405)


@check("protocol.md 6 status 413: a value over the device's bound is 413 and creates nothing", G)
def too_large(t):
    d = t.dir()
    limit = t.ok(P.OP_INFO)[P.K_VALUE]["max_frame"]
    t.expect(t.add(d + "/L", "x" * (limit // 2 + 200), "chr"), 413)
    t.expect(t.get(d + "/L"), 404, what="nothing was created")
