"""Rule: no link may block another. A pseudo-terminal client that stops reading gets its
link dropped (and the log says so) while a TCP client keeps getting its answers.

Real parts only: `dmagent serve --runtime cpython --tcp --pty`, a real pty slave that is
written to and never read, a real TCP client.
"""

import os
import time

from dmagent.host_tools.client import wire
from dmagent.host_tools.client import Device
from dmagent.agent import proto as P
from tests.host.agents import start_agent

# A big reply each (the demo tree with values, about 800 bytes), so the pty's own buffers
# (some 64 KB in the kernel) and the agent's queue fill after a few hundred unread answers.
_BIG = {P.K_OP: P.OP_GET, P.K_URI: ".?list=StructData"}


def test_stalled_pty_does_not_freeze_tcp(tmp_path):
    agent = start_agent(tmp_path, runtime="cpython", tcp=True, pty=True, state=False)
    try:
        pty_path = agent.urls[1]
        fd = os.open(pty_path, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, wire.encode_message({P.K_ID: 0, P.K_OP: P.OP_HELLO, P.K_SERVER: "ServerA"}))
            for i in range(1, 500):  # ~400 KB of answers the client never reads
                os.write(fd, b"\x00" + wire.encode_message({**_BIG, P.K_ID: i}))
            time.sleep(0.5)
            answered = 0
            with Device.open(agent.url, timeout=1.0, retries=0) as dev:
                for _ in range(5):
                    try:
                        dev.info()
                        answered += 1
                    except OSError:
                        pass
            assert answered == 5, "%d of 5 TCP requests answered beside a stalled pty" % answered
            deadline = time.monotonic() + 5
            while "not draining" not in agent.log() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "not draining" in agent.log(), agent.log()
            # The pty link serves again once its client reads: a fresh request is answered.
            while True:
                try:
                    os.set_blocking(fd, False)
                    if not os.read(fd, 65536):
                        break
                except BlockingIOError:
                    break
            os.set_blocking(fd, True)
            with Device.open("fd://%d" % fd, timeout=2.0, retries=2) as dev:
                assert dev.info()["link"].startswith("pty")
        finally:
            try:
                os.close(fd)
            except OSError:
                pass
    finally:
        agent.stop()
