"""Reading the wire: frames decoded (header, op, id, status, CBOR diagnostic notation, sealed
bodies opened with the principal's key by following the handshake), pcapng captures, and a
relaying proxy. Direction is always the gateway's view: "out" to the device, "in" from it.
"""

from dmagent.host_tools.sniff.decoder import Event, Sniffer
from dmagent.host_tools.sniff.diag import diag

__all__ = ["Sniffer", "Event", "diag"]
