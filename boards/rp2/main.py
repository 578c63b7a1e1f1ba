# dmagent main.py for the Pico W: the agent and dmboard run from the ROMFS image at /rom
# (/rom/lib is on sys.path); the same start-up as the ESP32. See boards/rp2/README.md.
import dmboard

dmboard.main()
