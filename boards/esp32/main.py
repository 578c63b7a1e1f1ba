# dmagent main.py: a short escape window (Ctrl-C: stay in the REPL), then the agent serves
# the console, and the UART and TCP links /dmagent.json asks for. See boards/esp32/README.md.
import dmboard

dmboard.main()
