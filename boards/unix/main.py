# dmagent main.py for the Unix port (the device runtime and the frozen firmware): the start-up
# is dmunix, which the runtime has as .mpy or frozen; a script is compiled into the heap, so
# this one stays short. Its folder goes last on sys.path: dmunix.py beside it is the fallback.
import sys

sys.path.append(sys.path.pop(0))
import asyncio  # noqa: E402

try:
    import dmunix  # noqa: E402

    dmunix.main()  # boots and starts the links; then the start-up leaves the heap
    del dmunix
    asyncio.get_event_loop().run_forever()
except KeyboardInterrupt:  # a terminal's Ctrl-C reaches the whole process group: a stop, not a crash
    print("dmagent: stopping", file=sys.stderr)
