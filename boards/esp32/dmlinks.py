"""The board's links besides the console: a second UART, and TCP (over Wi-Fi if configured).

dmboard imports this only when the config names one of them: code costs heap on a board.
Config: "uart": {"id": 1, "tx": 17, "rx": 16, "baud": 115200}; "tcp": {"port": 7000};
"wifi": {"ssid": "...", "password": "...", "timeout": 20}.
"""

import asyncio

from agent import server


def start(board, cfg):
    """Start every configured link as a task of the board; returns their names."""
    names = []
    uart = cfg.get("uart")
    if uart:
        from machine import UART

        uid = uart.get("id", 1)
        port = UART(uid, baudrate=uart.get("baud", 115200), tx=uart["tx"], rx=uart["rx"])
        stream = asyncio.StreamReader(port)
        names.append("uart%d" % uid)
        board.tasks.append(asyncio.create_task(server.serve_stream(board.app, stream, stream, names[-1])))
    tcp = cfg.get("tcp")
    if tcp:
        names.append("tcp:%d" % tcp.get("port", 7000))
        board.tasks.append(asyncio.create_task(serve_tcp(board, tcp, cfg.get("wifi"))))
    return names


async def serve_tcp(board, tcp, wifi):
    """Join Wi-Fi (if configured), then listen; retried every 30 s while the network is down."""
    while True:
        try:
            if wifi:
                await join_wifi(board, wifi)
            board.tcp = await server.serve_tcp(board.app, tcp.get("host", "0.0.0.0"), tcp.get("port", 7000))
            return
        except Exception as exc:  # the console serves meanwhile
            board.log("tcp: %r; again in 30 s" % (exc,))
        await asyncio.sleep(30)


async def join_wifi(board, wifi):
    import network

    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(wifi["ssid"], wifi.get("password", ""))
        for _ in range(int(wifi.get("timeout", 20)) * 5):
            if wlan.isconnected():
                break
            await asyncio.sleep_ms(200)
    if not wlan.isconnected():
        raise OSError("wifi %s: not connected" % wifi["ssid"])
    board.log("wifi %s: %s" % (wifi["ssid"], wlan.ifconfig()[0]))
