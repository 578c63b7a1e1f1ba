"""Tree URIs: the one canonical form of a URI, its limits, and its text again.

parse() makes the canonical form, a tuple (decoded segments, prop, listing): `A/B`, `./A/B`
and `%41/B` are one URI. The dispatcher makes it once per request and the policy, the ACL
checks and the tree all take that tuple: never compare URI text (a `%44MAcc` is `DMAcc`).
A node name never holds `/` (TND 6): a `%2F` that would decode into one is 400, by is_name(),
the one rule for names (URIs, renames, the config). format() escapes `%` and `?` again.
"""

from . import proto as P
from .errors import DMError

LISTINGS = ("Struct", "StructData")


def parse(text, max_depth=0, max_tot_len=0, max_seg_len=0):
    """-> the canonical form (segments, prop, listing); a canonical form given is returned
    as it is (it was checked when it was made). segments: decoded names, [] for the root; prop: the
    NAME of `?prop=NAME` (not checked against the known ones: that is a 406 decided after
    existence); listing: "Struct" or "StructData" for `?list=`. Limits of 0 are unlimited."""
    if type(text) is tuple:
        return text
    if type(text) is not str or not text:
        raise DMError(P.S_BAD_REQUEST, "URI must be non-empty text")
    prop = listing = None
    q = text.find("?")
    if q >= 0:
        query = text[q + 1 :]
        text = text[:q]
        if query.startswith("prop="):
            prop = query[5:]
            if not prop.isalpha():
                raise DMError(P.S_BAD_REQUEST, "bad ?prop= name")
        elif query[:5] == "list=" and query[5:]:
            listing = query[5:]
            if listing not in LISTINGS:  # TNDS and the like: a serialisation not offered
                raise DMError(P.S_NOT_SUPPORTED, "?list=Struct|StructData only")
        else:
            raise DMError(P.S_BAD_REQUEST, "query must be ?prop=NAME or ?list=Struct|StructData")
    if text == ".":
        segs = []
    else:
        if text.startswith("./"):
            text = text[2:]
        segs = text.split("/")
        for i in range(len(segs)):
            seg = segs[i]
            if "%" in seg:  # rare: the decoder is loaded on the first escape and kept
                from . import percent

                segs[i] = seg = percent.decode(seg)
            if not is_name(seg):
                raise DMError(P.S_BAD_REQUEST, "empty, '.', '..' or '/' name in URI")
    if max_depth and len(segs) > max_depth:
        raise DMError(P.S_URI_TOO_LONG, "URI deeper than %d" % max_depth)
    total = 1  # the canonical URI's length ("." and "/name" each), without building it
    for seg in segs:
        if max_seg_len and len(seg) > max_seg_len:
            raise DMError(P.S_URI_TOO_LONG, "segment longer than %d" % max_seg_len)
        total += 1 + len(seg) + 2 * (seg.count("%") + seg.count("?"))  # escape() makes 3 of 1
    if max_tot_len and total > max_tot_len:
        raise DMError(P.S_URI_TOO_LONG, "URI longer than %d" % max_tot_len)
    return segs, prop, listing


def is_name(name):
    """The rule for a node name (TND 6): not empty, not . or .., no '/' (a decoded %2F)."""
    return name and name != "." and name != ".." and "/" not in name


def escape(name):
    if "%" in name or "?" in name:  # a name holds no '/' (is_name)
        return name.replace("%", "%25").replace("?", "%3F")
    return name


def format(segs):
    if not segs:
        return "."
    return "./" + "/".join(map(escape, segs))


def join(uri, name):
    """URI of child `name` of the node at canonical `uri`."""
    return ("./" if uri == "." else uri + "/") + escape(name)
