"""`dmagent ports` and `--port auto`: the board guess from USB VID:PID, on fake port infos."""

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from dmagent.host_tools.cli.ports import ports_command
from dmagent.host_tools.client import ports as P


def info(device, vid=None, pid=None, description="n/a", serial_number=None):
    """What serial.tools.list_ports gives: a ListPortInfo's attributes."""
    return SimpleNamespace(device=device, vid=vid, pid=pid, description=description,
                           serial_number=serial_number, manufacturer=None)


@pytest.mark.parametrize("vid,pid,board", [
    (0x303A, 0x1001, "esp32 (S2/S3/C3/C6)"),  # Espressif: any PID
    (0x303A, 0x4001, "esp32 (S2/S3/C3/C6)"),
    (0x10C4, 0xEA60, "esp32"),  # CP210x
    (0x1A86, 0x7523, "esp32"),  # CH340
    (0x0403, 0x6001, "esp32"),  # FTDI FT232R
    (0x2E8A, 0x0005, "rp2 (Pico)"),  # Raspberry Pi: any PID
    (0x10C4, 0x0001, None),  # a Silicon Labs part that is not the CP210x bridge
    (0x046D, 0xC52B, None),  # a mouse receiver
    (None, None, None),  # a built-in UART
])
def test_guess_from_vid_pid(vid, pid, board):
    assert P.guess(vid, pid)[1] == board


def test_list_skips_ports_without_usb_ids_and_puts_boards_first():
    infos = [info("/dev/ttyS0"), info("/dev/ttyACM3", 0x046D, 0xC52B, "Logitech"),
             info("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102 USB to UART Bridge Controller")]
    ports = P.list_ports(infos)
    assert [p.device for p in ports] == ["/dev/ttyUSB0", "/dev/ttyACM3"]
    assert ports[0].usb_id == "10c4:ea60" and ports[0].likely and not ports[1].likely
    assert ports[0].as_dict()["board"] == "esp32"
    assert [p.device for p in P.list_ports(infos, include_all=True)][-1] == "/dev/ttyS0"
    assert P.list_ports(infos, include_all=True)[-1].description == ""  # "n/a" is no description


def test_auto_picks_the_only_likely_board():
    infos = [info("/dev/ttyS0"), info("/dev/ttyACM0", 0x2E8A, 0x0005, "Board in FS mode"),
             info("/dev/ttyACM1", 0x046D, 0xC52B)]
    assert P.resolve("auto", infos) == "/dev/ttyACM0"
    assert P.resolve("/dev/ttyX", infos) == "/dev/ttyX"  # a named port is taken as it is


def test_auto_with_several_boards_names_them():
    infos = [info("/dev/ttyUSB0", 0x1A86, 0x7523), info("/dev/ttyACM0", 0x303A, 0x1001)]
    with pytest.raises(P.PortError) as err:
        P.resolve("auto", infos)
    assert "several boards" in str(err.value)
    assert "/dev/ttyUSB0 (esp32)" in str(err.value) and "/dev/ttyACM0 (esp32 (S2/S3/C3/C6))" in str(err.value)


def test_auto_without_a_board_says_so():
    with pytest.raises(P.PortError, match="no board found.*other ports: /dev/ttyACM1"):
        P.resolve("auto", [info("/dev/ttyS0"), info("/dev/ttyACM1", 0x046D, 0xC52B)])
    with pytest.raises(P.PortError, match="no board found"):
        P.resolve("auto", [])


def test_cli_lists_ports_as_table_and_json(monkeypatch):
    import serial.tools.list_ports as lp

    monkeypatch.setattr(lp, "comports", lambda: [info("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102"),
                                                 info("/dev/ttyS0")])
    runner = CliRunner()
    res = runner.invoke(ports_command, [])
    assert res.exit_code == 0, res.output
    assert "/dev/ttyUSB0" in res.output and "10c4:ea60" in res.output and "esp32" in res.output
    assert "--port auto picks /dev/ttyUSB0" in res.output and "/dev/ttyS0" not in res.output
    res = runner.invoke(ports_command, ["--json", "--all"])
    doc = json.loads(res.output)
    assert doc["status"] == 200 and doc["error"] is None  # the one JSON shape of every command
    rows = doc["ports"]
    assert [r["port"] for r in rows] == ["/dev/ttyUSB0", "/dev/ttyS0"]
    assert rows[0]["vid_pid"] == "10c4:ea60" and rows[1]["board"] is None
