"""Reading a DDF safely and checking it against the package's DTD (data/ddf.dtd).

Parsing is defusedxml's: an entity declaration (XXE, billion laughs) is refused, never
expanded. Validation turns each DTD content model into a regular expression over the child
element names, so the DTD file is the one statement of the structure. Every error names a
line and a column of the file.
"""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

DTD_PATH = Path(__file__).with_name("data") / "ddf.dtd"


class DDFError(ValueError):
    """A DDF that cannot be used: the message starts with FILE:LINE:COLUMN."""


class _Builder(ET.TreeBuilder):
    """A TreeBuilder that remembers where each element starts."""

    def __init__(self):
        ET.TreeBuilder.__init__(self)
        self.expat = None
        self.where = {}

    def start(self, tag, attrs):
        elem = ET.TreeBuilder.start(self, tag, attrs)
        self.where[id(elem)] = (self.expat.CurrentLineNumber, self.expat.CurrentColumnNumber + 1)
        return elem


class Document:
    """A parsed DDF: its root element and where each element is in the file."""

    def __init__(self, root, where, name):
        self.root = root
        self._where = where
        self.name = name

    def where(self, elem):
        line, col = self._where.get(id(elem), (0, 0))
        return "%s:%d:%d" % (self.name, line, col)

    def error(self, elem, text):
        return DDFError("%s: %s" % (self.where(elem), text))


def parse(data, name="<ddf>"):
    """DDF bytes -> Document, validated; DDFError with a line and column otherwise."""
    builder = _Builder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=False, forbid_entities=True,
                              forbid_external=True)
    builder.expat = parser.parser
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException as exc:
        raise DDFError("%s:%d:%d: refused: %s (entity declarations are never expanded)"
                       % (name, parser.parser.CurrentLineNumber, parser.parser.CurrentColumnNumber + 1,
                          type(exc).__name__)) from None
    except ET.ParseError as exc:
        line, col = exc.position
        raise DDFError("%s:%d:%d: not well-formed XML: %s" % (name, line, col + 1, exc.msg
                                                               if hasattr(exc, "msg") else exc)) from None
    doc = Document(root, builder.where, name)
    validate(doc)
    return doc


# --- the DTD as regular expressions ------------------------------------------------------
def _load_dtd(path=DTD_PATH):
    text = re.sub(r"<!--.*?-->", "", path.read_text(), flags=re.S)
    models = {}
    for name, model in re.findall(r"<!ELEMENT\s+(\w+)\s+(.+?)>", text, re.S):
        model = " ".join(model.split())
        if model == "EMPTY":
            models[name] = ("empty", None)
        elif model == "(#PCDATA)":
            models[name] = ("text", None)
        else:
            # (A, B?, (C* | D?)) -> (?:(?:A,)(?:B,)?(?:(?:C,)*|(?:D,)?)) over "A,B,C,C,"
            tokens = {"(": "(?:", ")": ")", ",": "", "|": "|", "?": "?", "*": "*", "+": "+"}
            regex = "".join(tokens.get(t, "(?:%s,)" % t) for t in re.findall(r"\w+|[(),|?*+]", model))
            models[name] = ("children", re.compile(regex + r"\Z"))
    return models


MODELS = _load_dtd()


def validate(doc):
    root = doc.root
    if root.tag != "MgmtTree":
        raise doc.error(root, "the root element is <%s>, not <MgmtTree>" % root.tag)
    stack = [root]
    while stack:
        elem = stack.pop()
        kind, regex = MODELS.get(elem.tag, (None, None))
        if kind is None:
            raise doc.error(elem, "<%s> is not a DDF element" % elem.tag)
        children = list(elem)
        for child in children:
            if child.tag not in MODELS:
                raise doc.error(child, "<%s> is not a DDF element" % child.tag)
        if kind in ("empty", "text") and children:
            raise doc.error(children[0], "<%s> may hold %s, not <%s>"
                            % (elem.tag, "nothing" if kind == "empty" else "only text", children[0].tag))
        if kind == "empty" and (elem.text or "").strip():
            raise doc.error(elem, "<%s> must be empty" % elem.tag)
        if kind == "children":
            if (elem.text or "").strip():
                raise doc.error(elem, "<%s> holds text where elements belong" % elem.tag)
            names = "".join(c.tag + "," for c in children)
            if not regex.match(names):
                raise doc.error(elem, "<%s> holds %s, which the DDF DTD does not allow"
                                % (elem.tag, ", ".join("<%s>" % c.tag for c in children) or "nothing"))
        stack.extend(reversed(children))
