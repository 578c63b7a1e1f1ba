"""Helpers the edge tests share (test_store_format_edges, test_recovery_crash_windows,
test_reply_cache_*, test_journal_replay, test_confidential_plain): a scratch store folder,
and one request through a Link. Plain code: runs under MicroPython too."""

import os

from agent import cbor, frame
from agent import proto as P
from tests.agent.check import tohex

_serial = [0]


def tmpdir(tag):
    """A store folder that does not exist yet, in a fresh parent; remove with cleanup()."""
    _serial[0] += 1
    return "/tmp/dmagent-%s-%s-%d/store" % (tag, tohex(os.urandom(4)), _serial[0])


def rmtree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        try:
            os.remove(path + "/" + name)
        except OSError:
            rmtree(path + "/" + name)
    os.rmdir(path)


def cleanup(d):
    rmtree(d[: d.rindex("/")])


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def load(d):
    from agent.store import Store

    s = Store(d)
    try:
        return s.load()
    finally:
        s.close()


# One small decoder for all requests (the replies tested are short): at 110k a frame's 2 KB
# in one piece may not be found once an App has booted.
_decoder = [None]


def frames(link, kind, body):
    """The reply frames to one frame, decoded: [(kind, body bytes)]."""
    if _decoder[0] is None:
        _decoder[0] = frame.FrameDecoder(512)
    out = []
    for reply in link.receive(frame.encode_frame(kind, body)):
        for k, b in _decoder[0].feed(bytes(reply)):
            out.append((k, bytes(b)))
    return out


def ask(link, message):
    """One plain request; its one reply, decoded."""
    replies = frames(link, P.KIND_PLAIN, cbor.dumps(message))
    assert len(replies) == 1, replies
    kind, body = replies[0]
    assert kind == P.KIND_PLAIN
    return cbor.loads(body)
