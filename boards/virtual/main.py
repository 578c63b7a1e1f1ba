# dmagent main.py (virtual board): a short escape window (Ctrl-C: stay in the REPL), then the
# agent serves the console. See boards/virtual/README.md.
import dmvboard

dmvboard.main()
