"""One device under test: its link, the principals the suite speaks as, and what a check
uses to talk to it (`Probe`): requests it records, raw frames, a scratch folder of its own.

All principals share one link (a serial port has only one): switching principal is a new
handshake (with keys) or a new hello (an --insecure agent), so checks are written to switch
little. Plain frames stay anonymous on a keyed link while its sealed session lives on.
"""

import itertools
import os
import time

from dmagent.agent import proto as P
from dmagent.host_tools.client import wire
from dmagent.host_tools.client.device import Device, DeviceError, DeviceTimeout
from dmagent.host_tools.client.transport import open_url
from dmagent.host_tools.conformance.registry import Failed, Skipped

ANON = None
_FIELD_KEYS = {name[2:].lower(): getattr(P, name) for name in dir(P) if name.startswith("K_")}
_FIELD_KEYS["for_"] = P.K_FOR
_FIELD_KEYS["fmt"] = P.K_FORMAT
_UNSET = object()


class SetupError(Exception):
    """The suite cannot run on this device at all (no link, no principal it may use)."""


class Target:
    """The device and the suite's identities on it."""

    def __init__(self, url, keys=(), names=("ServerA", "ServerB"), timeout=2.0, confidential=(), ddf=None):
        self.url = url
        self.timeout = timeout
        self.keys = list(keys)  # [(principal, key bytes)] in the order given
        self.names = list(names)  # insecure hello principals when there are no keys
        self.confidential = list(confidential)
        self.ddf = ddf  # (config nodes, {parent: most children}) of the device's DDF, or None
        self.transport = None
        self._devices = {}
        self._current = object()
        self._ids = itertools.count(random_id())
        self.servers = []  # principals with a DMAcc account: p1, p2
        self.gateways = []  # key principals without one
        self.server_ids = []
        self.keyed = bool(self.keys)
        self.info = {}
        self.rtt = 0.0
        self.limits = {}
        self._dir_count = 0

    # --- setup ---------------------------------------------------------------------------
    def connect(self):
        try:
            self.transport = open_url(self.url)
        except OSError as exc:
            raise SetupError(str(exc)) from None
        first = self.keys[0][0] if self.keys else self.names[0]
        try:
            dev = self.as_(first)
            start = time.monotonic()
            self.info = dev.info()
            self.rtt = time.monotonic() - start
            self.server_ids = self._server_ids(dev)
        except DeviceError as exc:
            hint = "" if self.keys else " (without --key files the agent must run --insecure)"
            raise SetupError("cannot speak as %s: %s%s" % (first, exc, hint)) from None
        except DeviceTimeout as exc:
            raise SetupError(str(exc)) from None
        if self.keys:
            # A server sees its own account (others' may be closed to it); a gateway has none.
            for principal, _ in self.keys:
                try:
                    seen = self.server_ids if principal == first else self._server_ids(self.as_(principal))
                except DeviceError as exc:
                    raise SetupError("cannot speak as %s: %s" % (principal, exc)) from None
                (self.servers if principal in seen else self.gateways).append(principal)
                self.server_ids += [i for i in seen if i not in self.server_ids]
        else:
            self.servers = list(self.names)
        if not self.servers:
            raise SetupError("none of the key files is for a DM server with a ./DMAcc account")
        dev = self.as_(self.servers[0])
        for name in ("MaxDepth", "MaxTotLen", "MaxSegLen"):
            try:
                self.limits[name] = dev.get("./DevDetail/URI/" + name)
            except DeviceError:
                self.limits[name] = None

    def _server_ids(self, dev):
        ids = []
        try:
            for uri, value in dev.list("./DMAcc", data=True):
                if uri.endswith("/ServerID") and uri.count("/") == 3:
                    ids.append(value)
        except DeviceError:
            pass
        return ids

    def close(self):
        if self.transport is not None:
            self.transport.close()

    @property
    def silence(self):
        """How long to wait before deciding the device will not answer a frame."""
        return max(0.3, self.rtt * 10 + 0.15)

    def next_id(self):
        return next(self._ids) & 0x3FFFFFFF

    def next_dir(self):
        self._dir_count += 1
        return self._dir_count

    # --- identities ------------------------------------------------------------------------
    def key_of(self, principal):
        for name, key in self.keys:
            if name == principal:
                return key
        return None

    def as_(self, principal):
        """The Device speaking as principal (None: anonymous, plain frames), switched to."""
        if principal == self._current:
            return self._devices[principal]
        dev = Device(self.transport, timeout=self.timeout, retries=1)
        if principal is not None and self.keyed:
            self._handshake(dev, principal, self.key_of(principal))
        elif principal is not None:
            dev.hello(principal)
        elif not self.keyed:
            dev.hello()  # an insecure link names nobody again
        if principal is not None or not self.keyed:
            self._current = principal
        self._devices[principal] = dev
        return dev

    def forget_session(self):
        """The link's session was ended (a new HS1 or hello): switch again next time."""
        self._current = object()
        self._devices.clear()

    def _handshake(self, dev, principal, key, suites=(P.SUITE_CCM,)):
        if key is None:
            raise Skipped("no key file for %s" % principal)
        # A device backs off a source after failed handshakes (the suite fails some on
        # purpose) and says only "busy": wait and try again, longer each time (about 25 s).
        for attempt in range(8):
            try:
                return dev.handshake(principal, key, suites)
            except DeviceError as exc:
                busy = exc.status in (P.S_FORBIDDEN, P.S_DEVICE_FULL) and "busy" in (exc.message or "")
                if not busy or attempt == 7:
                    raise
                time.sleep(0.2 * (2 ** attempt))

    def handshake_as(self, principal, key, suites=(P.SUITE_CCM,)):
        """A fresh session on the link (ends the current one); the Device, or DeviceError."""
        self.forget_session()
        dev = Device(self.transport, timeout=self.timeout, retries=0)
        self._handshake(dev, principal, key, suites)
        self._current = principal
        self._devices[principal] = dev
        return dev


def random_id():
    return int.from_bytes(os.urandom(4), "big") & 0x0FFFFFFF


class Probe:
    """What one check sees: requests as any principal, recorded for the report."""

    def __init__(self, target, scratch):
        self.target = target
        self.scratch = scratch
        self.log = []  # (who, sent, received)
        self._acls = []
        self._dirs = []

    # --- principals ----------------------------------------------------------------------
    @property
    def p1(self):
        return self.target.servers[0]

    @property
    def p2(self):
        if len(self.target.servers) < 2:
            raise Skipped("needs a second DM server principal (a second --key, or two --as)")
        return self.target.servers[1]

    @property
    def limits(self):
        return self.target.limits

    # --- requests ----------------------------------------------------------------------------
    def message(self, op, **fields):
        msg = {P.K_ID: self.target.next_id(), P.K_OP: op}
        for name, value in fields.items():
            msg[_FIELD_KEYS[name]] = value
        return msg

    def send(self, message, who=_UNSET, timeout=None):
        """The response to message as who (default p1); Failed if none comes."""
        who = self.p1 if who is _UNSET else who
        dev = self.target.as_(who)
        for attempt in range(3):  # as any client: the same message again (a short heap drops frames)
            response = dev.exchange(message, timeout)
            if response is not None:
                break
        self.log.append((who, message, response))
        if response is None:
            raise Failed("no answer within %.1fs, 3 tries" % (timeout or self.target.timeout))
        return response

    def req(self, op, who=_UNSET, **fields):
        return self.send(self.message(op, **fields), who)

    def status(self, op, who=_UNSET, **fields):
        return self.req(op, who, **fields).get(P.K_STATUS)

    def expect(self, response, *statuses, what=""):
        status = response.get(P.K_STATUS)
        if status not in statuses:
            wanted = " or ".join(str(s) for s in statuses)
            raise Failed("%sexpected %s, got %s%s" % (what + ": " if what else "", wanted, status,
                                                    (" (%s)" % response[P.K_MSG]) if P.K_MSG in response else ""))
        return response

    def ok(self, op, who=_UNSET, **fields):
        return self.expect(self.req(op, who, **fields), 200)

    def equal(self, got, wanted, what):
        if got != wanted:
            raise Failed("%s: expected %r, got %r" % (what, wanted, got))

    def true(self, cond, what):
        if not cond:
            raise Failed(what)

    # shorthands, as p1 unless who is given
    def get(self, uri, who=_UNSET):
        return self.req(P.OP_GET, who, uri=uri)

    def value(self, uri, who=_UNSET):
        return self.expect(self.get(uri, who), 200, what="Get " + uri).get(P.K_VALUE)

    def add(self, uri, value=_UNSET, fmt=None, who=_UNSET, mime=None):
        fields = {"uri": uri}
        if value is not _UNSET:
            fields["value"] = value
        if fmt is not None:
            fields["format"] = fmt
        if mime is not None:
            fields["type"] = mime
        return self.req(P.OP_ADD, who, **fields)

    def node(self, uri, who=_UNSET):
        return self.expect(self.add(uri, fmt="node", who=who), 200, what="Add interior " + uri)

    def leaf(self, uri, value, fmt, who=_UNSET, mime=None):
        return self.expect(self.add(uri, value, fmt, who, mime), 200, what="Add " + uri)

    def replace(self, uri, value, fmt=None, who=_UNSET):
        fields = {"uri": uri, "value": value}
        if fmt is not None:
            fields["format"] = fmt
        return self.req(P.OP_REPLACE, who, **fields)

    def delete(self, uri, who=_UNSET):
        return self.req(P.OP_DELETE, who, uri=uri)

    def acl(self, uri, who=_UNSET):
        return self.req(P.OP_ACL, who, uri=uri)

    def verdict(self, uri, server, cmd, who=_UNSET):
        return self.req(P.OP_CHECK, who, uri=uri, server=server, cmd=cmd)

    def set_acl(self, uri, acl, who=_UNSET):
        """Replace uri's own ACL (must succeed); put back to empty after the check."""
        self.expect(self.replace(uri + "?prop=ACL", acl, who=who), 200, what="Replace ACL of " + uri)
        if uri not in self._acls:
            self._acls.append(uri)

    def dir(self, name=None):
        """A fresh interior node under the scratch folder, every right p1's alone."""
        uri = "%s/%s" % (self.scratch, name or "c%d" % self.target.next_dir())
        self.node(uri)
        self._dirs.append(uri)
        self.expect(self.replace(uri + "?prop=ACL", _all_rights(self.p1)), 200, what="open " + uri)
        return uri

    def open_to(self, uri, *principals):
        """uri's ACL gives every right to p1 and principals."""
        self.set_acl(uri, _all_rights("+".join((self.p1,) + principals)))

    # --- raw frames --------------------------------------------------------------------------
    def raw(self, data, wait=None, frames=None):
        """Write bytes as they are; -> [(kind, body)] of every frame that came back within
        wait seconds (default: the device's silence), or as soon as `frames` have."""
        transport = self.target.transport
        transport.write(data)
        reader = wire.FrameReader()
        got = []
        deadline = time.monotonic() + (wait or self.target.silence)
        while time.monotonic() < deadline:
            chunk = transport.read(deadline - time.monotonic())
            got += reader.feed(chunk or b"")
            if frames is not None and len(got) >= frames:
                break
        self.log.append(("raw", data, got))
        return got

    def raw_plain(self, body, wait=None, frames=1):
        """A plain frame with this body (bytes) -> the decoded replies."""
        import cbor2

        replies = []
        for kind, reply in self.raw(wire.encode_frame(P.KIND_PLAIN, body), wait, frames):
            if kind == P.KIND_PLAIN:
                try:
                    replies.append(cbor2.loads(reply))
                except Exception:
                    replies.append(reply)
        return replies

    # --- cleanup -------------------------------------------------------------------------------
    def cleanup(self):
        """Own ACLs back to empty, shallow first (each then inherits what lets p1 go on), then
        the check's folders deleted. -> a problem to report, or None."""
        problems = []
        for uri in sorted(self._acls, key=lambda u: u.count("/")):
            try:
                resp = self.replace(uri + "?prop=ACL", "", who=self.p1)
                if resp.get(P.K_STATUS) not in (200, 404):
                    problems.append("reset ACL of %s: %s" % (uri, resp.get(P.K_STATUS)))
            except Failed as exc:
                problems.append(str(exc))
        for uri in reversed(self._dirs):
            try:
                resp = self.delete(uri, who=self.p1)
                if resp.get(P.K_STATUS) not in (200, 404):
                    problems.append("delete %s: %s" % (uri, resp.get(P.K_STATUS)))
            except Failed as exc:
                problems.append(str(exc))
        return "; ".join(problems) or None


def _all_rights(ids):
    return "&".join("%s=%s" % (cmd, ids) for cmd in P.COMMANDS)
