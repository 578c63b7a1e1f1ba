"""Serial ports and a guess at the board on each, from the USB VID:PID of its bridge.

A guess is only a guess: a CP210x or CH340 bridge sits on many boards besides ESP32s, and a
port without USB ids (a built-in UART, a pseudo-terminal) is listed but never picked by
`--port auto`, which takes the one likely board or names the candidates.
"""

# (VID, PID or None for any) -> (what it is, the board it most likely is)
KNOWN = {
    (0x303A, None): ("Espressif native USB", "esp32 (S2/S3/C3/C6)"),
    (0x10C4, 0xEA60): ("Silicon Labs CP210x USB-UART", "esp32"),
    (0x1A86, 0x7523): ("WCH CH340 USB-UART", "esp32"),
    (0x1A86, 0x55D4): ("WCH CH9102 USB-UART", "esp32"),
    (0x0403, 0x6001): ("FTDI FT232R USB-UART", "esp32"),
    (0x0403, 0x6010): ("FTDI FT2232 (ESP-Prog)", "esp32"),
    (0x0403, 0x6015): ("FTDI FT231X USB-UART", "esp32"),
    (0x2E8A, None): ("Raspberry Pi RP2040/RP2350 USB", "rp2 (Pico)"),
}


class PortError(Exception):
    pass


class Port:
    """One serial port: its path, USB ids, description and the guess."""

    def __init__(self, device, vid=None, pid=None, description="", serial_number=None, manufacturer=None):
        self.device = device
        self.vid = vid
        self.pid = pid
        self.description = description or ""
        self.serial_number = serial_number
        self.manufacturer = manufacturer
        self.bridge, self.board = guess(vid, pid)

    @classmethod
    def from_info(cls, info):
        """From a serial.tools.list_ports ListPortInfo (or anything with its attributes)."""
        desc = getattr(info, "description", "") or ""
        if desc == "n/a":
            desc = ""
        return cls(info.device, getattr(info, "vid", None), getattr(info, "pid", None), desc,
                   getattr(info, "serial_number", None), getattr(info, "manufacturer", None))

    @property
    def likely(self):
        return self.board is not None

    @property
    def usb_id(self):
        return "%04x:%04x" % (self.vid, self.pid) if self.vid is not None and self.pid is not None else ""

    def as_dict(self):
        return {"port": self.device, "vid_pid": self.usb_id or None, "description": self.description,
                "serial_number": self.serial_number, "bridge": self.bridge, "board": self.board}


def guess(vid, pid):
    """(bridge description, board guess) for a USB VID:PID, or (None, None)."""
    if vid is None:
        return None, None
    for key in ((vid, pid), (vid, None)):
        if key in KNOWN:
            return KNOWN[key]
    return None, None


def list_ports(infos=None, include_all=False):
    """Ports, likely boards first. infos: ListPortInfo objects (default: the system's).
    Ports without USB ids are left out unless include_all."""
    if infos is None:
        from serial.tools import list_ports as lp

        infos = lp.comports()
    ports = [Port.from_info(i) for i in infos]
    if not include_all:
        ports = [p for p in ports if p.vid is not None]
    return sorted(ports, key=lambda p: (not p.likely, p.device))


def pick(ports):
    """The one likely board's port; PortError naming the candidates otherwise."""
    likely = [p for p in ports if p.likely]
    if len(likely) == 1:
        return likely[0].device
    if not likely:
        others = ", ".join(p.device for p in ports)
        raise PortError("no board found on any serial port%s; plug one in, or name the port"
                        % (" (other ports: %s)" % others if others else ""))
    raise PortError("several boards: %s; name the port(s) to use"
                    % ", ".join("%s (%s)" % (p.device, p.board) for p in likely))


def resolve(port, infos=None):
    """`auto` -> the one likely board's port; any other name as it is."""
    if port != "auto":
        return port
    return pick(list_ports(infos))
