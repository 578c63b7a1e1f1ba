"""The raw-REPL link to a MicroPython board, on mpremote's serial transport, made to hold on
a noisy line: every command is checked on the board before it runs and retried when garbled.

Also how a board is reset into its REPL: a strategy the caller passes or registers (RTS by
default), so that this link knows nothing of particular boards.
"""

import hashlib
import time

from dmagent.agent.escape import ESCAPE
from dmagent.host_tools.flash.errors import FlashError, no_progress

REPL_NODE = "./DevDetail/Ext/Repl"
READY = b"dmagent: serving"  # boards/esp32/dmboard.py prints it before the console carries frames
DEFAULT_BAUD = 115200
TRIES = 4  # attempts per step on a noisy line before giving up with an error
# Errors a command garbled on the line raises on the board: retried however often they repeat.
GARBLED = ("SyntaxError", "IndentationError", "UnicodeError", "NameError", "ValueError: garbled")
PACK_WBITS = 10  # deflate window 1 KiB: what a board needs to inflate a file (_x below)
HASH_BATCH = 8  # files per hash listing: a short answer is less likely to be garbled
READ_TRIES = 8  # attempts at a listing: reading twice is harmless, and long answers meet more faults


# --- resetting a board ---------------------------------------------------------------------------
# A strategy is reset(port, serial) -> the extra seconds the board needs to boot, or None when
# it cannot reset that port. Board kinds without modem lines (the virtual board) register their
# own with register_reset; the flasher knows none of them.
RESETS = []


def register_reset(strategy):
    """Add a reset strategy tried after the RTS pulse (once: registering twice is harmless)."""
    if strategy not in RESETS:
        RESETS.append(strategy)


def rts_reset(port, ser):
    """Pulse RTS: the ESP32 auto-reset circuit's EN. None on a port without modem lines (a pty)."""
    try:
        ser.dtr = False
        ser.rts = True
        time.sleep(0.1)
        ser.rts = False
    except (OSError, ValueError, AttributeError):
        return None
    return 0.0


def any_reset(port, ser):
    """The first strategy that can reset port: RTS, then the registered ones."""
    for strategy in [rts_reset] + RESETS:
        boot = strategy(port, ser)
        if boot is not None:
            return boot
    return None


# --- the raw REPL, on mpremote's serial transport --------------------------------------------
def _transport_class():
    try:
        from mpremote.transport import TransportError, TransportExecError
        from mpremote.transport_serial import SerialTransport
    except ImportError:
        raise FlashError("mpremote is not installed", "pip install -c constraints.txt mpremote") from None

    class Transport(SerialTransport):
        """mpremote's serial transport, quiet (no prints) and with bounded waits."""

        def enter_raw_repl(self, soft_reset=False, timeout_overall=3):
            self.serial.write(b"\r\x03\x03")
            time.sleep(0.05)
            self.drain()
            self.serial.write(b"\r\x01")
            banner = b"raw REPL; CTRL-B to exit\r\n"
            data = self.read_until(1, banner, timeout=1, timeout_overall=timeout_overall)
            if not data.endswith(banner):
                raise TransportError("could not enter raw repl", data)
            self.in_raw_repl = True

        def exec_raw_no_follow(self, command):
            data = command if isinstance(command, bytes) else command.encode()
            prompt = self.read_until(1, b">", timeout=2)
            if not prompt.endswith(b">"):
                raise TransportError("no raw REPL prompt: %r" % prompt[-40:])
            self.serial.write(b"\x05A\x01")  # raw paste: flow-controlled by the board
            reply = self.serial.read(2)
            if reply == b"R\x01":
                return self.raw_paste_write(data)
            if reply != b"R\x00":
                raise TransportError("raw paste: unexpected %r" % reply)
            # A board without raw paste: the plain raw REPL, paced.
            for i in range(0, len(data), 256):
                self.serial.write(data[i:i + 256])
                time.sleep(0.01)
            self.serial.write(b"\x04")
            if self.serial.read(2) != b"OK":
                raise TransportError("command not accepted")

        def drain(self):
            while True:
                n = self.serial.in_waiting
                if not n:
                    return
                self.serial.read(n)

    return Transport, TransportError, TransportExecError


def open_error(port, exc):
    text = str(exc)
    low = text.lower()
    if "busy" in low or "lock" in low or "resource temporarily" in low:
        return FlashError("%s is busy: %s" % (port, text),
                          "close the program using it (a serial monitor, mpremote, `dmagent serve`, "
                          "ModemManager), then try again")
    if "no such file" in low or "could not open port" in low and "denied" not in low or "filenotfound" in low:
        return FlashError("no board on %s: the port does not exist" % port,
                          "plug the board in and run `dmagent ports` to see which port it got")
    if "denied" in low or "permission" in low:
        return FlashError("no permission to open %s" % port,
                          "add yourself to the port's group (`sudo usermod -aG dialout $USER`, "
                          "then log in again)")
    return FlashError("cannot open %s: %s" % (port, text))


class Repl:
    """One board's raw REPL: exec with retries on a noisy line, the way in, the way out."""

    def __init__(self, port, baud=DEFAULT_BAUD, progress=no_progress, reset=None):
        import serial

        Transport, self.TransportError, self.TransportExecError = _transport_class()
        self.port = port
        self.baud = baud
        self.progress = progress
        self.reset = reset or any_reset  # reset(port, serial) -> extra boot seconds, or None
        self.retries = 0
        self.refused = None  # why the agent would not give the console back, if it said
        self.helpers = False  # _HELPERS defined in the board's raw REPL
        self.deflate = False  # the board has `deflate`: files go packed
        self.sent = 0  # bytes of code sent to the raw REPL (raw-paste framing aside)
        try:  # mpremote hides why a port did not open: find out first
            probe = serial.serial_for_url(port, baudrate=baud, exclusive=True, do_not_open=True)
            probe.open()
            probe.close()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise open_error(port, exc) from None
        try:
            self.t = Transport(port, baudrate=baud, exclusive=True, timeout=1)
        except self.TransportError as exc:
            raise open_error(port, exc) from None

    def close(self):
        try:
            self.t.close()
        except Exception:
            pass

    @property
    def serial(self):
        return self.t.serial

    # --- getting to the raw REPL ----------------------------------------------------------------
    def enter(self, principal=None, reset_wait=3.0, key=None):
        """Reach the raw REPL: directly, through the agent's Repl node (as principal, with
        its key if it has one), or by a hardware reset and ESCAPE in main.py's escape window."""
        heard = bytearray()
        if self._try_enter(heard, 1.5):
            return "repl"
        if self._leave_agent(principal, key) and self._try_enter(heard):
            return "agent"
        if self._reset_into_repl(reset_wait, heard) and self._try_enter(heard):
            return "reset"
        if self.refused:
            raise FlashError("the agent on %s refused to give the console back: %s" % (self.port, self.refused),
                             "--as SERVERID must name an owner (the device config's security.owners) "
                             "to Exec %s, with its key in "
                             "--key or the key store (`dmagent keys list`); a reset did not help: a "
                             "board with keys has no escape window unless its config sets "
                             "escape_window_ms (--firmware erases a board that is lost)" % REPL_NODE)
        if not heard:
            raise FlashError("no board answers on %s (nothing came back)" % self.port,
                             "is this the board's port (`dmagent ports`)? Is it powered and running "
                             "MicroPython? A board without MicroPython needs --firmware first")
        raise FlashError("the raw REPL on %s cannot be reached (the board answers: %r)"
                         % (self.port, bytes(heard[-60:])),
                         "an agent serving the console ignores Ctrl-C: give --as OWNER (an "
                         "owner, security.owners, to Exec %s) with its key. A board with keys has no escape "
                         "window unless its config sets escape_window_ms; one without keys "
                         "listens 2 s after a reset. ESP32 boards reset by RTS (EN) and DTR (GPIO0): a USB-UART "
                         "without it wired needs the EN button pressed while flashing starts; "
                         "--firmware erases a board that cannot be reached otherwise" % REPL_NODE)

    def _try_enter(self, heard, timeout=3):
        try:
            self.t.enter_raw_repl(timeout_overall=timeout)
            return True
        except self.TransportError as exc:
            if len(exc.args) > 1 and exc.args[1]:
                heard.extend(exc.args[1])
            return False

    def _leave_agent(self, principal, key=None):
        """If the agent serves this console, ask it (Exec on the Repl node) to give it back:
        with a key through a handshake, else by naming principal in hello (--insecure agents)."""
        from dmagent.host_tools.client.device import Device, DeviceError
        from dmagent.host_tools.client.transport import LinkError, SerialTransport

        self.t.serial.write(b"\x00")  # end any half frame the REPL attempts left behind
        self.close()
        try:
            link = SerialTransport(self.port, self.baud)
        except LinkError:
            link = None
        answered = None
        if link is not None:
            dev = Device(link, timeout=0.8, retries=1)
            try:
                if key is not None:
                    dev.handshake(principal, key)
                elif principal is not None:
                    dev.hello(principal)
                dev.exec(REPL_NODE)
                answered = "agent"
            except DeviceError as exc:
                answered = "refused"
                self.refused = str(exc)
            except LinkError:
                answered = None
            finally:
                dev.close()
        Transport, _, _ = _transport_class()
        self.t = Transport(self.port, baudrate=self.baud, exclusive=True, timeout=1)
        if answered == "agent":
            time.sleep(0.4)  # the agent answers, then stops serving
        return answered == "agent"

    def _reset_into_repl(self, wait, heard):
        """Reset the board (the reset strategy given, else the first that can: RTS, then any a
        board kind registered), then ESCAPE through main.py's escape window, sent again and
        again: while the board boots the bytes are lost or kept as garbage for its agent."""
        ser = self.t.serial
        boot = self.reset(self.port, ser)
        if boot is None:
            return False
        wait += boot
        deadline = time.monotonic() + wait
        seen = bytearray()
        while time.monotonic() < deadline:
            ser.write(ESCAPE)
            time.sleep(0.05)
            n = ser.in_waiting
            if n:
                seen.extend(ser.read(n))
            if seen.endswith(b">>> ") or b"this is the REPL" in seen:
                heard.extend(seen)
                return True
        heard.extend(seen)
        return False

    # --- running code on the board --------------------------------------------------------------
    def run(self, code, timeout=3):
        """Exec code once; its stdout (bytes). Raises TransportError, or FlashError for a device error."""
        self.sent += len(code)
        out, err = self.t.exec_raw(code, timeout=timeout)
        if err:
            if b"NameError" in err:
                self.helpers = False  # the board lost them (it reset): defined again when next needed
            raise self.TransportExecError(out, err.decode(errors="replace"))
        return out

    def call(self, code, parse=None, timeout=5, what="a command", tries=TRIES):
        """Exec code with retries (it must be safe to run twice), only if it arrived whole;
        parse(stdout) may reject a garbled answer by raising ValueError/SyntaxError, which is
        retried too. The code may call the functions of _HELPERS."""
        checked = "_c(%r,%r)" % (code, board_check(code.encode()))
        last = None
        for attempt in range(tries):
            try:
                if not self.helpers:
                    self.run(_DEFINE_HELPERS, timeout)
                    self.helpers = True
                out = self.run(checked, timeout)
                return parse(out) if parse else out
            except self.TransportExecError as exc:
                error = last_line(exc.error_output)
                if error == last and not error.startswith(GARBLED):
                    break  # the same error twice: the device means it
                last = error
            except (self.TransportError, ValueError, SyntaxError, UnicodeDecodeError) as exc:
                last = str(exc)
            self.retries += 1
            self.resync()
        raise FlashError("%s failed on %s: %s" % (what, self.port, last),
                         "the line may be noisy: try a lower --baud or another cable")

    def resync(self):
        """After a garbled exchange: back to a clean raw REPL prompt."""
        for _ in range(TRIES):
            time.sleep(0.1)
            try:
                self.t.drain()
                self.t.enter_raw_repl()
                return
            except self.TransportError:
                continue
        raise FlashError("lost the raw REPL on %s" % self.port, "check the cable; reset the board")

    def soft_reset_to_agent(self, timeout=20, quiet=3.0):
        """Friendly REPL, Ctrl-D: boot.py and main.py run; wait for the agent's ready line.
        Returns (ready, output): ready is False when that line never came whole (a noisy
        line may garble it; the caller asks the agent itself). FlashError if the board
        stopped with a traceback."""
        ser = self.t.serial
        seen = bytearray()
        for _ in range(TRIES):  # a Ctrl-B or Ctrl-D the line lost would leave the board silent
            ser.write(b"\r\x02")
            time.sleep(0.1)
            self.t.drain()
            ser.write(b"\x04")
            until = time.monotonic() + 2
            while time.monotonic() < until and b"reboot" not in seen and b"dmagent" not in seen:
                seen.extend(ser.read(ser.in_waiting or 1))
            if b"reboot" in seen or b"dmagent" in seen:
                break
        deadline = time.monotonic() + timeout
        heard = time.monotonic()
        while time.monotonic() < deadline:
            n = ser.in_waiting
            chunk = ser.read(n or 1)
            if chunk:
                seen.extend(chunk)
                heard = time.monotonic()
                if READY in seen and b"\n" in seen[seen.index(READY):]:
                    return True, bytes(seen)
                if b"Traceback" in seen and seen.endswith(b">>> "):
                    raise FlashError("the agent did not start on %s after the flash:\n%s"
                                     % (self.port, tail(seen)),
                                     "the files are in place and verified; the board's output above "
                                     "says why it stopped")
            elif seen and time.monotonic() - heard > quiet:
                break  # the board has said what it will say
        return False, bytes(seen)


def tail(output):
    return bytes(output).decode(errors="replace").strip()[-800:] or "(silence)"


# --- code that runs on the board -------------------------------------------------------------------
# Sent once per raw-REPL session (its globals last between commands), so that each hash
# listing and each file costs a short call on the wire, not its code again.
# _c(code, check) runs code only if it arrived whole: a garbled byte in a path would otherwise
# run, say, a switch of a journal that is not there, and report it done.
# w(offset, base64, check) writes a chunk only if it arrived whole, at its place (the check
# covers the offset too), so a garbled command is refused and simply sent again.
_HELPERS = """import hashlib,binascii,os
def _c(s,c):
 if binascii.hexlify(hashlib.sha256(s).digest())[:8]!=c:raise ValueError('garbled command')
 exec(s,globals())
def _h(p):
 try:
  f=open(p,'rb')
 except OSError:
  return None
 h=hashlib.sha256();b=bytearray(512);m=memoryview(b)
 while 1:
  n=f.readinto(b)
  if not n:break
  h.update(m[:n])
 f.close()
 return binascii.hexlify(h.digest()).decode()
def _hl(ps):
 for p in ps:print('H',p,_h(p))
 print('END')
def _o(p):
 global f
 f=open(p,'wb')
def w(o,d,c):
 d=binascii.a2b_base64(d);h=hashlib.sha256(str(o));h.update(d)
 if binascii.hexlify(h.digest())[:8]!=c:raise ValueError('garbled chunk')
 f.seek(o);f.write(d)
def _x(s,d):
 import deflate
 try:
  i=open(s,'rb')
 except OSError:
  return
 o=open(d,'wb');z=deflate.DeflateIO(i,deflate.RAW,%d);b=bytearray(256);m=memoryview(b)
 while 1:
  n=z.readinto(b)
  if not n:break
  o.write(m[:n])
 o.close();i.close();os.remove(s)
""" % PACK_WBITS
# The helpers go as a string the board hashes before it runs it: a byte the line garbled in
# a name would otherwise define a helper that fails at every later call.
_DEFINE_HELPERS = """import hashlib,binascii
s=%r
if binascii.hexlify(hashlib.sha256(s).digest())!=%r:raise ValueError('garbled helpers')
exec(s)
""" % (_HELPERS, hashlib.sha256(_HELPERS.encode()).hexdigest().encode())

def parse_hashes(paths):
    def parse(out):
        text = out.decode()
        if not text.rstrip().endswith("END"):
            raise ValueError("hash listing cut short")
        got = {}
        for line in text.splitlines():
            if line.startswith("H "):
                path, _, digest = line[2:].rpartition(" ")
                if digest != "None" and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)):
                    raise ValueError("garbled hash line %r" % line)
                got[path] = None if digest == "None" else digest
        if set(got) != set(paths):
            raise ValueError("hash listing incomplete")
        return got

    return parse


def device_hashes(repl, paths, what="reading file hashes"):
    """{device path: sha256 hex or None (missing)}, computed on the board."""
    paths = list(paths)
    result = {}
    for i in range(0, len(paths), HASH_BATCH):
        part = paths[i:i + HASH_BATCH]
        result.update(repl.call("_hl(%r)" % (part,), parse_hashes(part), timeout=10, what=what,
                                tries=READ_TRIES))
    return result


def board_check(data):
    """What _c compares on the board: the first 8 hex digits of the code's sha256."""
    return hashlib.sha256(data).hexdigest()[:8].encode()


def last_line(error_output):
    lines = error_output.strip().splitlines()
    return lines[-1] if lines else ""
