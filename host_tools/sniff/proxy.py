"""A relay between a gateway and a device that sees every frame: the bytes go through as they
came (a frame is never rebuilt), and each direction is fed to a Sniffer and, if asked, to a
pcapng capture. One gateway connection at a time, each with its own link to the device.
"""

import socket
import threading
import time

from dmagent.host_tools.client.transport import open_url
from dmagent.host_tools.sniff.decoder import IN, OUT, Sniffer


class Proxy:
    def __init__(self, listen, to, on_event=None, capture=None, keys=None):
        host, _, port = listen.rpartition(":")
        self.to = to
        self.on_event = on_event or (lambda event: None)
        self.capture = capture  # a CaptureWriter, or None
        self.keys = keys
        self._server = socket.create_server((host or "127.0.0.1", int(port)))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.connections = 0

    def serve_forever(self):
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            self._relay(conn)

    def start(self):
        """serve_forever in a daemon thread (for tests and embedding); returns self."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def close(self):
        self._stop.set()
        self._server.close()

    def _relay(self, conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        device = open_url(self.to)
        sniffer = Sniffer(self.keys)
        done = threading.Event()

        def seen(direction, data):
            ts = time.time()
            with self._lock:
                for event in sniffer.feed(direction, data, ts):
                    if self.capture is not None:
                        self.capture.write(direction, event.raw, ts)
                    self.on_event(event)

        def gateway_to_device():
            try:
                while not done.is_set():
                    data = conn.recv(4096)
                    if not data:
                        break
                    seen(OUT, data)  # first: the answer it brings is logged after it
                    device.write(data)
            except OSError:
                pass
            done.set()

        thread = threading.Thread(target=gateway_to_device, daemon=True)
        thread.start()
        try:
            while not done.is_set():
                try:
                    data = device.read(0.2)
                except OSError:
                    break
                if data:
                    conn.sendall(data)
                    seen(IN, data)
        finally:
            done.set()
            conn.close()
            device.close()
            thread.join(2)
