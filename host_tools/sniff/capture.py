"""pcapng captures of the wire (python-pcapng): one Enhanced Packet Block per frame as it
travelled (COBS and the 0x00 included), link type LINKTYPE_USER0 (147), epb_flags with the
direction (outbound: to the device; inbound: from it), microsecond timestamps.
Wireshark opens them as they are; a dissector for user type 147 is all it would add.
"""

import pcapng
from pcapng import blocks

LINKTYPE = 147  # LINKTYPE_USER0: the user range 147-162, for private link layers
FLAG_INBOUND, FLAG_OUTBOUND = 1, 2  # epb_flags bits 0-1 (pcapng section 4.3.1)
MAGIC = b"\x0a\x0d\x0d\x0a"


class CaptureWriter:
    def __init__(self, path, description="dmagent frames"):
        self._file = open(path, "wb")
        shb = blocks.SectionHeader(options={"shb_userappl": "dmagent"})
        shb.new_member(blocks.InterfaceDescription, link_type=LINKTYPE, snaplen=0xFFFF,
                       options={"if_name": "dmagent", "if_description": description, "if_tsresol": b"\x06"})
        self._shb = shb
        self._writer = pcapng.FileWriter(self._file, shb)

    def write(self, direction, raw, ts):
        epb = self._shb.new_member(blocks.EnhancedPacket)
        epb.interface_id = 0
        micros = int(round(ts * 1e6))  # if_tsresol 6: microseconds since 1970
        epb.timestamp_high, epb.timestamp_low = micros >> 32, micros & 0xFFFFFFFF
        epb.packet_data = bytes(raw)
        epb.options["epb_flags"] = FLAG_OUTBOUND if direction == "out" else FLAG_INBOUND
        self._writer.write_block(epb)
        self._file.flush()

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def is_capture(path):
    with open(path, "rb") as f:
        return f.read(4) == MAGIC


def read_capture(path):
    """(timestamp, direction, bytes) of every packet in a pcapng file."""
    with open(path, "rb") as f:
        for block in pcapng.FileScanner(f):
            if isinstance(block, blocks.EnhancedPacket):
                flags = block.options.get("epb_flags", 0) if "epb_flags" in block.options else 0
                direction = {FLAG_INBOUND: "in", FLAG_OUTBOUND: "out"}.get(int(flags) & 3)
                yield block.timestamp, direction, bytes(block.packet_data)
