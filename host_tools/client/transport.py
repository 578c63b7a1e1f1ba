"""Byte pipes to a device: TCP, a serial port (pyserial), or an open file descriptor.

Everything above (framing, requests, retries) is written once on top of the three
primitives here: write, read with a timeout, close. A URL picks the transport.
"""

import os
import select
import socket
from urllib.parse import parse_qs, urlparse

from dmagent.host_tools.client.errors import DmagentError, UsageError

DEFAULT_BAUD = 115200
URL_FORMS = "tcp://HOST:PORT, serial:///dev/ttyX?baud=N, /dev/ttyX or auto"


class LinkError(DmagentError, OSError):
    """The link could not be opened or broke; the message says which and why."""


class Transport:
    def write(self, data):
        raise NotImplementedError

    def read(self, timeout):
        """Whatever bytes arrive within timeout seconds (b'' if none)."""
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TcpTransport(Transport):
    def __init__(self, host, port, connect_timeout=5.0):
        self.where = "tcp://%s:%d" % (host, port)
        try:
            self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as exc:
            raise LinkError("cannot connect to %s: %s" % (self.where, exc.strerror or exc)) from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data):
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise LinkError("%s: send failed: %s" % (self.where, exc)) from None

    def read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return b""
        except OSError as exc:
            raise LinkError("%s: receive failed: %s" % (self.where, exc)) from None
        if not data:
            raise LinkError("%s: the device closed the connection" % self.where)
        return data

    def close(self):
        self.sock.close()


class SerialTransport(Transport):
    def __init__(self, port, baud=DEFAULT_BAUD):
        import serial  # pyserial

        self.where = "serial://%s?baud=%d" % (port, baud)
        try:
            self.ser = serial.serial_for_url(port, baudrate=baud, timeout=0, exclusive=True)
        except serial.SerialException as exc:
            hint = ""
            text = str(exc)
            if "busy" in text.lower() or "lock" in text.lower():
                hint = " (is another program, e.g. a serial monitor, using the port?)"
            raise LinkError("cannot open %s: %s%s" % (port, text, hint)) from None
        self._serial = serial

    def write(self, data):
        try:
            self.ser.write(data)
        except self._serial.SerialException as exc:
            raise LinkError("%s: write failed: %s" % (self.where, exc)) from None

    def read(self, timeout):
        self.ser.timeout = timeout
        try:
            first = self.ser.read(1)
            if not first:
                return b""
            self.ser.timeout = 0
            return first + self.ser.read(4096)
        except self._serial.SerialException as exc:
            raise LinkError("%s: read failed: %s" % (self.where, exc)) from None

    def close(self):
        self.ser.close()


class FdTransport(Transport):
    """An already open descriptor: a pseudo-terminal master, or a pipe pair."""

    def __init__(self, fd_in, fd_out=None):
        self.fd_in = fd_in
        self.fd_out = fd_in if fd_out is None else fd_out
        self.where = "fd://%d" % fd_in

    def write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self.fd_out, view)
            view = view[n:]

    def read(self, timeout):
        ready, _, _ = select.select([self.fd_in], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.fd_in, 4096)
        except OSError as exc:
            raise LinkError("%s: read failed: %s" % (self.where, exc)) from None


def open_url(url, connect_timeout=5.0):
    """tcp://host:port, serial:///dev/ttyX?baud=N, a bare /dev/ttyX or COM3, or fd://N."""
    if url.startswith("tcp://"):
        parts = urlparse(url)
        try:
            port = parts.port
        except ValueError:  # not a number, or past 65535
            port = None
        if not parts.hostname or not port:
            raise UsageError("bad device URL %r: a tcp URL needs a host and a port from 1 to 65535" % url,
                             "tcp://HOST:PORT, e.g. tcp://127.0.0.1:7000")
        return TcpTransport(parts.hostname, port, connect_timeout)
    if url.startswith("serial://"):
        parts = urlparse(url)
        baud = parse_qs(parts.query).get("baud", [str(DEFAULT_BAUD)])[0]
        if not baud.isdigit() or not int(baud):
            raise UsageError("bad device URL %r: baud must be a positive number, not %r" % (url, baud),
                             "serial:///dev/ttyUSB0?baud=115200")
        return SerialTransport(parts.path, int(baud))
    if url.startswith("fd://"):
        if not url[5:].isdigit():
            raise UsageError("bad device URL %r: fd://N takes a file descriptor number" % url)
        return FdTransport(int(url[5:]))
    if url.startswith("/dev/") or url.upper().startswith("COM"):
        return SerialTransport(url)
    raise UsageError("unknown device URL %r" % url, "use " + URL_FORMS)
