# dmagent main.py for the Pico W: the agent and dmboard run from the ROMFS image at /rom
# (/rom/lib is on sys.path); the same start-up as the ESP32 (boards/esp32/main.py): Ctrl-C
# off at once, the console's buffers while the heap is whole, then agent/startup.py.
import micropython

micropython.kbd_intr(-1)
from agent import startup  # noqa: E402

startup.reserve(1)  # the console; dmboard reserves what else the config asks for
del startup  # dmboard imports it for boot only, then unloads it
import dmboard  # noqa: E402

dmboard.main()
