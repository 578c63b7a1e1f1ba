# dmagent main.py (virtual board): Ctrl-C off at once (a console byte is data: frames hold
# 0x03), the buffers while the heap is whole, then the shared start-up (agent/startup.py).
# See boards/virtual/README.md.
import micropython

micropython.kbd_intr(-1)
import vboard_hal  # noqa: E402

vboard_hal.uart_any()  # a call to the board: it learns now that Ctrl-C is off
from agent import startup  # noqa: E402

startup.reserve(1)
del startup  # dmvboard imports it for boot only, then unloads it
import dmvboard  # noqa: E402

dmvboard.main()
