"""The security promises (docs/security.md; protocol.md 7): only a proven key opens a
session, sealed frames cannot be altered or replayed, anonymous links reach only what is
open, gateways act only for whom they are allowed, confidential subtrees need AES-CCM."""

import os

import cbor2

from dmagent.agent import proto as P
from dmagent.host_tools.client import wire
from dmagent.host_tools.client.device import DeviceError
from dmagent.host_tools.conformance.registry import Skipped, check

G = "security"


def _handshake_fails(t, principal, key):
    try:
        t.target.handshake_as(principal, key)
    except DeviceError as exc:
        return exc.status
    finally:
        t.target.forget_session()
    return 200


@check("protocol.md 7.2 handshake: the key file's key opens a session for its principal", G, needs=("keys",))
def handshake_ok(t):
    info = t.ok(P.OP_INFO)[P.K_VALUE]
    t.equal(info.get("principal"), t.p1, "principal of the session")
    t.true(info.get("suite") in (P.SUITE_CCM, P.SUITE_HMAC), "suite %r" % info.get("suite"))


@check("protocol.md 7.2 handshake: a wrong key is refused with 401", G, needs=("keys",))
def wrong_key(t):
    t.equal(_handshake_fails(t, t.p1, os.urandom(16)), 401, "status")


@check("protocol.md 7.2 handshake: an unknown principal is refused with 401, like a wrong key", G, needs=("keys",))
def unknown_principal(t):
    t.equal(_handshake_fails(t, "ConformanceNobody", os.urandom(16)), 401, "status")


@check("protocol.md 7.2 handshake: a malformed HS1 is answered ERR 400", G, needs=("keys",))
def bad_hs1(t):
    t.target.forget_session()
    got = t.raw(wire.encode_frame(P.KIND_HANDSHAKE, cbor2.dumps([P.HS1, "x"])), frames=1)
    t.true(got, "no answer to a malformed HS1")
    t.equal(cbor2.loads(got[0][1])[:2], [P.HS_ERR, 400], "answer")


@check("protocol.md 7.4 protected frames: a sealed request with one bit flipped is dropped unanswered and counted", G,
       needs=("keys",))
def tampered(t):
    dev = t.target.as_(t.p1)
    before = dev.info()["rejected"]
    kind, body, _ = dev.channel.seal(cbor2.dumps(t.message(P.OP_INFO)))
    body = bytearray(body)
    body[-1] ^= 0x01
    t.true(not t.raw(wire.encode_frame(kind, bytes(body))), "a tampered frame was answered")
    t.equal(dev.info()["rejected"], before + 1, "rejected count")


@check("protocol.md 7.4 replay: a sealed request sent twice as it is is answered once", G, needs=("keys",))
def replayed(t):
    d = t.dir()
    dev = t.target.as_(t.p1)
    msg = t.message(P.OP_ADD, uri=d + "/Once", value=1, format="int")
    kind, body, _ = dev.channel.seal(cbor2.dumps(msg), msg[P.K_ID])
    frame = wire.encode_frame(kind, body)
    t.true(len(t.raw(frame, frames=1)) == 1, "the first copy got no answer")
    t.true(not t.raw(frame), "the replayed copy was answered")
    t.target.forget_session()  # the channel's response seq moved on without it


@check("protocol.md 7.4 protected frames: a sealed frame with a truncated tag is dropped", G, needs=("keys",))
def truncated_tag(t):
    dev = t.target.as_(t.p1)
    kind, body, _ = dev.channel.seal(cbor2.dumps(t.message(P.OP_INFO)))
    t.true(not t.raw(wire.encode_frame(kind, body[:-3])), "a frame with a cut tag was answered")


@check("protocol.md 7.5 plain frames: an anonymous write on a keyed device is refused (407) and changes nothing", G,
       needs=("keys",))
def anonymous_write(t):
    d = t.dir()
    t.expect(t.add(d + "/Anon", 1, "int", who=None), 407, 401)
    t.expect(t.get(d + "/Anon"), 404, what="nothing created")


@check("protocol.md 4 hello: naming a principal in a plain hello is refused (401) unless --insecure", G,
       needs=("keys",))
def hello_naming(t):
    resp = t.req(P.OP_HELLO, who=None, server=t.p1)
    t.expect(resp, 401)
    t.equal(t.ok(P.OP_INFO, who=None)[P.K_VALUE].get("principal"), None, "principal of the plain link")


@check("protocol.md 7.5 proxy mode: a request acting for a ServerID on a plain link is 403", G)
def plain_for(t):
    d = t.dir()
    msg = t.message(P.OP_ADD, uri=d + "/ByProxy", value=1, format="int")
    msg[P.K_FOR] = t.p1
    t.expect(t.send(msg, who=None), 403)
    t.expect(t.get(d + "/ByProxy"), 404, what="nothing created")


@check("protocol.md 7.5 proxy mode: a server naming another ServerID in `for` is 403 and nothing runs", G,
       needs=("keys",))
def server_for(t):
    d = t.dir()
    msg = t.message(P.OP_ADD, uri=d + "/ByProxy", value=1, format="int")
    msg[P.K_FOR] = t.p2
    t.expect(t.send(msg), 403)
    t.expect(t.get(d + "/ByProxy"), 404, what="nothing created")


def _gateway(t):
    if not t.target.gateways:
        raise Skipped("needs a gateway key (a key whose principal has no DMAcc account)")
    return t.target.gateways[0]


@check("protocol.md 7.5 proxy mode: a gateway acting for a ServerID it is not configured for is 403", G,
       needs=("keys",))
def gateway_not_allowed(t):
    gw = _gateway(t)
    msg = t.message(P.OP_INFO)
    msg[P.K_FOR] = "ConformanceNobody"
    t.expect(t.send(msg, who=gw), 403)


@check("protocol.md 7.5 proxy mode: a gateway acting for a server gets exactly that server's ACL decisions", G,
       needs=("keys",))
def gateway_for(t):
    gw = _gateway(t)
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    msg = t.message(P.OP_GET, uri=d + "/L")
    msg[P.K_FOR] = t.p1
    resp = t.send(msg, who=gw)
    if resp.get(P.K_STATUS) == 403:
        raise Skipped("%s may not act for %s on this device" % (gw, t.p1))
    t.expect(resp, 200)
    t.expect(t.get(d + "/L", who=gw), 425, what="the gateway as itself")


@check("protocol.md 7.5 confidential: a confidential subtree over an integrity-only session is 403", G,
       needs=("keys",))
def confidential(t):
    if not t.target.confidential:
        raise Skipped("give --confidential URI for the device's security.confidential")
    for principal, key in t.target.keys:
        try:
            dev = t.target.handshake_as(principal, key, suites=(P.SUITE_HMAC,))
        except DeviceError:
            continue
        try:
            for uri in t.target.confidential:
                resp = dev.exchange(t.message(P.OP_GET, uri=uri))
                t.log.append((principal, uri, resp))
                t.true(resp is not None, "no answer")
                t.expect(resp, 403, what="Get %s over HMAC-only" % uri)
        finally:
            t.target.forget_session()
        return
    raise Skipped("no key may use the integrity-only suite on this device")


@check("protocol.md 7.1 suites: a principal not listed as integrity-only cannot get an HMAC-only session (403)", G,
       needs=("keys",))
def integrity_policy(t):
    statuses = {}
    for principal, key in t.target.keys:
        try:
            t.target.handshake_as(principal, key, suites=(P.SUITE_HMAC,))
            statuses[principal] = 200
        except DeviceError as exc:
            statuses[principal] = exc.status
        finally:
            t.target.forget_session()
    t.true(all(s in (200, 403) for s in statuses.values()), "statuses %r" % statuses)
    if all(s == 200 for s in statuses.values()):
        raise Skipped("every key here may use the integrity-only suite")
