"""The client side of the protocol: transports (serial, TCP, pty), the wire codec, the
security channel, key files, and `Device`, the object a program or the CLI talks through.

It knows nothing of the CLI; everything here raises exceptions, never exits.
"""

from dmagent.host_tools.client.device import Device, DeviceError, DeviceTimeout, status_text  # noqa: F401
from dmagent.host_tools.client.errors import DmagentError, UsageError  # noqa: F401
from dmagent.host_tools.client.transport import LinkError  # noqa: F401
