# dmagent main.py: Ctrl-C off at once (a console byte is data: frames hold 0x03), the
# buffers while the heap is whole, then the shared start-up (agent/startup.py): config,
# escape window, keys, agent. See boards/esp32/README.md.
import micropython

micropython.kbd_intr(-1)
from agent import startup  # noqa: E402

startup.reserve(1)  # the console; dmboard reserves what else the config asks for
del startup  # dmboard imports it for boot only, then unloads it
import dmboard  # noqa: E402

dmboard.main()
