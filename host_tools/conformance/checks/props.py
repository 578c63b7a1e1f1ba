"""TND 7.7 node properties, addressed as URI?prop=NAME: what each reads, which take Replace
(ACL, Name, Title), and 405/406 for the rest."""

from dmagent.agent import proto as P
from dmagent.host_tools.conformance.registry import check

G = "properties"


@check("TND 7.7.1 ACL property: Get ?prop=ACL of a new leaf is its own ACL, empty", G)
def acl_prop(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    resp = t.expect(t.get(d + "/L?prop=ACL"), 200)
    t.equal((resp[P.K_VALUE], resp.get(P.K_FORMAT)), ("", "chr"), "ACL property")


@check("TND 7.7.2 Format property: ?prop=Format of a leaf is its format, of an interior node 'node'", G)
def format_prop(t):
    d = t.dir()
    t.leaf(d + "/L", True, "bool")
    t.equal(t.value(d + "/L?prop=Format"), "bool", "leaf")
    t.equal(t.value(d + "?prop=Format"), "node", "interior node")


@check("TND 7.7.3 Name property: ?prop=Name is the node's last segment", G)
def name_prop(t):
    d = t.dir()
    t.leaf(d + "/Leafy", 1, "int")
    t.equal(t.value(d + "/Leafy?prop=Name"), "Leafy", "Name")


@check("TND 7.7.4 Size property: ?prop=Size of a leaf is its value's size in bytes", G)
def size_prop(t):
    d = t.dir()
    t.leaf(d + "/L", "h\u00e9llo", "chr")
    t.equal(t.value(d + "/L?prop=Size"), 6, "Size of 'h\u00e9llo' (UTF-8)")


@check("TND 7.7.4 Size property: Size is for leaves only (406 on an interior node)", G)
def size_interior(t):
    d = t.dir()
    t.expect(t.get(d + "?prop=Size"), 406)


@check("TND 7.7.5 Title property: a node without a Title reads an empty one", G)
def title_default(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.equal(t.value(d + "/L?prop=Title"), "", "Title")


@check("TND 7.7.5 Title property: Replace ?prop=Title sets it and Get reads it back", G)
def title_replace(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.replace(d + "/L?prop=Title", "Room temperature"), 200)
    t.equal(t.value(d + "/L?prop=Title"), "Room temperature", "Title")


@check("TND 7.7.7 Type property: a chr leaf given no Type reads text/plain", G)
def type_default(t):
    d = t.dir()
    t.leaf(d + "/L", "x", "chr")
    t.equal(t.value(d + "/L?prop=Type"), "text/plain", "Type")


@check("TND 7.7.7 Type property: the MIME type given on Add is kept", G)
def type_given(t):
    d = t.dir()
    t.leaf(d + "/L", "{}", "chr", mime="application/json")
    t.equal(t.value(d + "/L?prop=Type"), "application/json", "Type")


@check("TND 7.7.6 TStamp / 7.7.8 VerNo: optional properties answer 200 or 406, never something else", G)
def optional_props(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    for prop in ("TStamp", "VerNo"):
        t.expect(t.get(d + "/L?prop=" + prop), 200, 406, what=prop)


@check("omadm-rules properties: an unknown property is 406", G)
def unknown_prop(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.get(d + "/L?prop=Colour"), 406)


@check("TND 7.7.3 Name property: Replace ?prop=Name renames the node; the old name is gone", G)
def rename(t):
    d = t.dir()
    t.leaf(d + "/Old", 3, "int")
    t.expect(t.replace(d + "/Old?prop=Name", "New"), 200)
    t.expect(t.get(d + "/Old"), 404, what="old name")
    t.equal(t.value(d + "/New"), 3, "value under the new name")


@check("omadm-rules rights: a rename onto a sibling's name is 418 and changes nothing", G)
def rename_taken(t):
    d = t.dir()
    t.leaf(d + "/A", 1, "int")
    t.leaf(d + "/B", 2, "int")
    t.expect(t.replace(d + "/A?prop=Name", "B"), 418)
    t.equal((t.value(d + "/A"), t.value(d + "/B")), (1, 2), "both leaves")


@check("omadm-rules rights: a rename keeps the subtree below the node", G)
def rename_subtree(t):
    d = t.dir()
    t.node(d + "/N")
    t.leaf(d + "/N/L", 5, "int")
    t.expect(t.replace(d + "/N?prop=Name", "M"), 200)
    t.equal(t.value(d + "/M/L"), 5, "leaf below the renamed node")


@check("omadm-rules properties: Replace of Format, Type or Size is 405 (only ACL, Name, Title take Replace)", G)
def read_only_props(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    for prop, value in (("Format", "chr"), ("Type", "text/xml"), ("Size", 3)):
        t.expect(t.replace(d + "/L?prop=" + prop, value), 405, what=prop)


@check("omadm-rules properties: Add or Delete of a ?prop= URI is 405", G)
def prop_other_commands(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.add(d + "/L?prop=Title", "t", "chr"), 405, what="Add")
    t.expect(t.delete(d + "/L?prop=Title"), 405, what="Delete")


@check("TND 7.7.1 ACL property: Replace ?prop=ACL stores it and Get ?prop=ACL reads it back", G)
def acl_replace(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    acl = "Get=%s&Replace=%s" % (t.p1, t.p1)
    t.set_acl(d + "/L", acl)
    t.equal(t.value(d + "/L?prop=ACL"), acl, "ACL")
