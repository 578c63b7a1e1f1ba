"""A client-side transport that puts a faulty line between the host and a real agent: the
virtual board's seeded fault injection (host_tools.vboard.board), applied to the bytes each
way. Used by the tests of the framing that must survive a noisy serial line."""

from dmagent.host_tools.client.transport import Transport
from dmagent.host_tools.vboard.board import Faults, _FaultyLine


class FaultyTransport(Transport):
    def __init__(self, inner, spec):
        self.inner = inner
        faults = Faults.parse(spec)
        self.to_device = _FaultyLine(faults, "in") if faults.applies_to("in") else None
        self.from_device = _FaultyLine(faults, "out") if faults.applies_to("out") else None
        self.where = inner.where

    def write(self, data):
        self.inner.write(self.to_device.apply(data) if self.to_device else data)

    def read(self, timeout):
        data = self.inner.read(timeout)
        return self.from_device.apply(data) if self.from_device and data else data

    def close(self):
        self.inner.close()


class GarbageFirst(Transport):
    """Every write is preceded by a few bytes of line noise (no 0x00 among them)."""

    def __init__(self, inner, noise=b"\x13\x37\xa5"):
        self.inner, self.noise, self.where = inner, noise, inner.where

    def write(self, data):
        self.inner.write(self.noise + data)

    def read(self, timeout):
        return self.inner.read(timeout)

    def close(self):
        self.inner.close()
