"""DDF <-> the agent's initial-tree config (docs/config.md `nodes`), and a DDF of a live tree.

Import keeps what the agent can hold: every named node with its format, value (DefaultValue
or Value), ACL, Title, Type (MIME, or the MO identifier of an interior node's DDFName) and
Scope; AccessType and Occurrence travel along in the config (`access`, `occurrence`) for
the agent to enforce. An unnamed node (<X>, a placeholder for nodes made at run time)
describes a shape, not a node: not a node of the initial tree, but its parent's
`placeholder` (format, access, occurrence: what a node added there may do, and how many).
"""

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

from dmagent.host_tools.ddf.model import DDFError, parse

DATA = Path(__file__).with_name("data")
STANDARD = {"DevInfo": DATA / "DevInfo.ddf.xml", "DevDetail": DATA / "DevDetail.ddf.xml",
            "DMAcc": DATA / "DMAcc.ddf.xml"}
COMMANDS = ("Add", "Copy", "Delete", "Exec", "Get", "Replace")


def _text(elem, path, default=None):
    found = elem.find(path)
    return default if found is None else (found.text or "").strip()


def _only_child(elem, path):
    found = elem.find(path)
    return None if found is None or not len(found) else found[0]


def read_file(path):
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DDFError("%s: %s" % (path, exc.strerror)) from None
    return parse(data, str(path))


# --- import --------------------------------------------------------------------------------
def to_config(doc):
    """A Document -> {"nodes": [...]} for the agent's config, parents before children."""
    nodes = []
    for elem in doc.root.findall("Node"):
        base = _text(elem, "Path") or "."
        _walk(doc, elem, base.rstrip("/") if base != "." else ".", nodes)
    return {"nodes": nodes}


def _walk(doc, elem, parent, out):
    name = _text(elem, "NodeName", "")
    props = elem.find("DFProperties")
    if not name:  # a placeholder: its instances are made at run time; its parent keeps its shape
        return _shape(props, {})
    if "/" in name:
        raise doc.error(elem.find("NodeName"), "a node name must not contain '/': %r" % name)
    uri = "%s/%s" % (parent, name)
    entry = _shape(props, {"uri": uri})
    fmt = entry["format"]
    title = _text(props, "DFTitle") or _text(elem, "RTProperties/Title")
    if title:
        entry["title"] = title
    dftype = _only_child(props, "DFType")
    mime = (dftype.text or "").strip() if dftype is not None else ""
    rt_type = _text(elem, "RTProperties/Type")
    if rt_type or mime:
        entry["type"] = rt_type or mime
    acl = _text(elem, "RTProperties/ACL")
    if acl is not None:
        entry["acl"] = acl
    if fmt != "node":
        text = _text(elem, "Value")
        if text is None:
            text = _text(props, "DefaultValue")
        if text is not None:
            entry["value"] = _value(doc, elem, text, fmt)
    out.append(entry)
    if fmt == "node":
        for child in elem.findall("Node"):
            shape = _walk(doc, child, uri, out)
            if shape is not None:
                entry["placeholder"] = shape
    elif elem.findall("Node"):
        raise doc.error(elem.find("Node"), "the leaf %s has child nodes" % uri)


def _shape(props, entry):
    """entry with the format, AccessType, Occurrence and Scope of DFProperties props."""
    entry["format"] = _only_child(props, "DFFormat").tag
    entry["access"] = [c.tag for c in props.find("AccessType")]
    occurrence = _only_child(props, "Occurrence")
    if occurrence is not None:
        entry["occurrence"] = occurrence.tag + ((":" + (occurrence.text or "").strip()) if occurrence.tag.endswith("N") else "")
    scope = _only_child(props, "Scope")
    if scope is not None:
        entry["scope"] = scope.tag.lower()
    return entry


def _value(doc, elem, text, fmt):
    try:
        if fmt == "int":
            return int(text)
        if fmt == "float":
            return float(text)
        if fmt == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError("a bool is true or false")
            return text.lower() == "true"
        if fmt == "null":
            return None
        if fmt in ("bin", "b64"):
            base64.b64decode(text, validate=True)
            raise ValueError("a %s value cannot go in a JSON config (give it at run time)" % fmt)
    except ValueError as exc:
        raise doc.error(elem, "value %r for format %s: %s" % (text, fmt, exc)) from None
    return text


_MAX = {"One": 1, "ZeroOrOne": 1}


def child_limits(doc):
    """{parent URI: the most children its <X> placeholder allows} (Occurrence One, ZeroOrOne,
    ZeroOrN, OneOrN), for checking a device's enforcement."""
    limits = {}

    def walk(elem, parent):
        name = _text(elem, "NodeName", "")
        if not name:
            occurrence = _only_child(elem.find("DFProperties"), "Occurrence")
            if occurrence is not None and (occurrence.tag in _MAX or occurrence.tag.endswith("OrN")):
                limits[parent] = _MAX.get(occurrence.tag) or int((occurrence.text or "0").strip())
            return
        uri = "%s/%s" % (parent, name)
        for child in elem.findall("Node"):
            walk(child, uri)

    for elem in doc.root.findall("Node"):
        base = _text(elem, "Path") or "."
        walk(elem, base.rstrip("/") if base != "." else ".")
    return limits


# --- export --------------------------------------------------------------------------------
class Node:
    """One node for a DDF: what a live device or a config says about it."""

    def __init__(self, uri, fmt, value=None, acl=None, title=None, mime=None, access=None, scope=None,
                 occurrence=None, placeholder=None):
        self.uri, self.fmt, self.value, self.acl = uri, fmt, value, acl
        self.title, self.mime, self.access, self.scope, self.occurrence = title, mime, access, scope, occurrence
        self.placeholder = placeholder  # the shape of its <X> child (config `placeholder`), or None


def from_config(config):
    return [Node(n["uri"], n.get("format") or "chr", n.get("value"), n.get("acl"), n.get("title"), n.get("type"),
                 n.get("access"), n.get("scope"), n.get("occurrence"), n.get("placeholder"))
            for n in config.get("nodes", [])]


def from_device(dev, root="."):
    """Every node under root the device lets its principal Get. AccessType is what the
    node's effective ACL names (plus Get); Scope and Occurrence are not told by the wire."""
    nodes = []
    for uri in dev.list(root):
        if uri == ".":
            continue
        fmt = dev.get(uri, "Format")
        own, effective, _ = dev.acl(uri)
        access = sorted({entry.split("=", 1)[0] for entry in effective.split("&") if entry} | {"Get"})
        value = None
        if fmt != "node":
            try:
                value = dev.get(uri)
            except Exception:  # a write-only secret: its shape, not its value
                value = None
        nodes.append(Node(uri, fmt, value, own, dev.get(uri, "Title") or None, dev.get(uri, "Type") or None,
                          [a for a in COMMANDS if a in access]))
    return nodes


def _write_shape(elem, access, fmt, occurrence, scope):
    """elem's DFProperties with AccessType, DFFormat, Occurrence and Scope (DTD order)."""
    props = ET.SubElement(elem, "DFProperties")
    holder = ET.SubElement(props, "AccessType")
    for cmd in access or ("Get",):
        ET.SubElement(holder, cmd)
    ET.SubElement(ET.SubElement(props, "DFFormat"), fmt)
    if occurrence:
        kind, _, n = occurrence.partition(":")
        ET.SubElement(ET.SubElement(props, "Occurrence"), kind).text = n or None
    if scope:
        ET.SubElement(ET.SubElement(props, "Scope"), scope.capitalize())
    return props


def _write_type(props, fmt, mime):
    dftype = ET.SubElement(props, "DFType")
    if fmt == "node":
        ET.SubElement(dftype, "DDFName").text = mime or ""
    else:
        ET.SubElement(dftype, "MIME").text = mime or "text/plain"


def to_ddf(nodes, man=None, mod=None):
    """Nodes (parents before children) -> DDF XML text that validates against the DTD."""
    root = ET.Element("MgmtTree")
    ET.SubElement(root, "VerDTD").text = "1.2"
    if man:
        ET.SubElement(root, "Man").text = man
    if mod:
        ET.SubElement(root, "Mod").text = mod
    elems = {}
    for node in nodes:
        parent_uri, _, name = node.uri.rpartition("/")
        holder = elems.get(parent_uri)
        elem = ET.SubElement(holder if holder is not None else root, "Node")
        ET.SubElement(elem, "NodeName").text = name
        if holder is None:
            ET.SubElement(elem, "Path").text = parent_uri
        if node.acl is not None:
            ET.SubElement(ET.SubElement(elem, "RTProperties"), "ACL").text = node.acl
        props = _write_shape(elem, node.access, node.fmt, node.occurrence, node.scope)
        if node.title:
            ET.SubElement(props, "DFTitle").text = node.title
        _write_type(props, node.fmt, node.mime)
        if node.fmt == "node":
            elems[node.uri] = elem
            if node.placeholder:
                shape = node.placeholder
                each = ET.SubElement(elem, "Node")
                ET.SubElement(each, "NodeName").text = ""
                fmt = shape.get("format") or "chr"
                _write_type(_write_shape(each, shape.get("access"), fmt, shape.get("occurrence"), shape.get("scope")),
                            fmt, None)
        elif node.value is not None:
            ET.SubElement(elem, "Value").text = _text_of(node.value)
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    parse(text.encode(), "<export>")  # what we write must read back
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


def _text_of(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    return str(value)
