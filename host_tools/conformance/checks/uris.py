"""TND 6 URIs and the limits the device publishes in ./DevDetail/URI (omadm-rules: 414)."""

from dmagent.host_tools.conformance.registry import Skipped, check

G = "uris"


def _bad_uri(suffix):
    def run(t):
        d = t.dir()
        t.expect(t.get(d + suffix), 400, what="Get " + d + suffix)
        t.expect(t.add(d + suffix, 1, "int"), 400, what="Add " + d + suffix)
    return run


for _suffix, _what in (("/", "never ends in '/'"), ("/a/../b", "holds no '..' segment"),
                       ("/./b", "holds no '.' segment after the leading './'"),
                       ("//b", "has no empty segment"), ("/%zz", "has only valid %XX escapes"),
                       ("/%4", "has no truncated %X escape")):
    check("TND 6 URI syntax: a URI %s (400)" % _what, G)(_bad_uri(_suffix))


@check("TND 6 URI syntax: ./A/B and A/B name the same node", G)
def relative_same(t):
    d = t.dir()
    t.leaf(d + "/L", 9, "int")
    t.equal(t.value(d[2:] + "/L"), 9, "Get without './'")


@check("TND 6 URI syntax: a %XX escape names the character it encodes", G)
def escapes(t):
    d = t.dir()
    t.leaf(d + "/A%42C", 1, "int")
    t.equal(t.value(d + "/ABC"), 1, "Get /ABC after Add /A%42C")


def _limit(t, name):
    value = t.limits.get(name)
    if not value:
        raise Skipped("DevDetail/URI/%s is %r (unlimited or unreadable)" % (name, value))
    return value


@check("DM-StdObj DevDetail/URI/MaxSegLen: a segment one byte over the limit is 414", G)
def seg_over(t):
    d = t.dir()
    t.expect(t.add(d + "/" + "s" * (_limit(t, "MaxSegLen") + 1), 1, "int"), 414)


@check("DM-StdObj DevDetail/URI/MaxSegLen: a segment exactly at the limit is accepted", G)
def seg_at(t):
    d = t.dir()
    seg = "s" * _limit(t, "MaxSegLen")
    if len(d) + 1 + len(seg) > (t.limits.get("MaxTotLen") or 10 ** 6):
        raise Skipped("MaxTotLen leaves no room for a full segment here")
    t.leaf(d + "/" + seg, 1, "int")


@check("DM-StdObj DevDetail/URI/MaxDepth: a node one level deeper than the limit is 414", G)
def depth_over(t):
    d = t.dir()
    depth = _limit(t, "MaxDepth")
    have = d.count("/")
    if depth - have > 40:
        raise Skipped("MaxDepth %d is too deep to build here" % depth)
    uri = d
    for i in range(depth - have):
        uri += "/d"
        t.expect(t.add(uri, fmt="node"), 200, what="level %d" % uri.count("/"))
    t.expect(t.add(uri + "/d", fmt="node"), 414, what="depth %d" % (depth + 1))


@check("DM-StdObj DevDetail/URI/MaxTotLen: a URI longer than the limit is 414", G)
def total_over(t):
    d = t.dir()
    total = _limit(t, "MaxTotLen")
    seg = t.limits.get("MaxSegLen") or 32
    uri = d
    while len(uri) + 1 + min(seg, 30) <= total:
        uri += "/" + "t" * min(seg, 30)
        t.expect(t.add(uri, fmt="node"), 200, what="%d bytes" % len(uri))
    t.expect(t.add(uri + "/" + "t" * min(seg, 30), fmt="node"), 414)


@check("DM-StdObj DevDetail/URI: MaxDepth, MaxTotLen, MaxSegLen are published as int leaves", G)
def limits_published(t):
    for name in ("MaxDepth", "MaxTotLen", "MaxSegLen"):
        resp = t.expect(t.get("./DevDetail/URI/" + name), 200, what=name)
        t.equal(resp.get(5), "int", name + " format")
