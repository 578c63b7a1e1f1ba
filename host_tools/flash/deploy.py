"""Deploy a bundle to MicroPython boards over the raw REPL: firmware, files, identity, keys.

Every file is written under a temporary name and its sha256 checked on the device; only then
does one switch, listed first in /.dmflash (which boot.py finishes after a power cut), rename
them all in. A flash that fails part way leaves the board booting the agent it had before.
Library first: flash() and flash_many() return results; the click command only draws them.
"""

import ast
import base64
import binascii
import hashlib
import json
import os
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dmagent.firmware_build.bundle import Bundle, build
from dmagent.firmware_build.mpy import BuildError, abi_from_sys_mpy, abi_text

JOURNAL = "/.dmflash"
RECORD = "/.dmbundle.json"  # what the last flash installed: version and every file's hash
TMP = ".dmnew"
READY = b"dmagent: serving"  # boards/esp32/dmboard.py prints it before the console carries frames
REPL_NODE = "./DevDetail/Ext/Repl"
DEFAULT_BAUD = 115200
CHUNK = 1024  # bytes per write command (base64 in the raw REPL); halved on trouble
TRIES = 4  # attempts per step on a noisy line before giving up with an error
CHUNK_TRIES = 8  # attempts per chunk of a file (each checked on the board before it is written)
# Errors a command garbled on the line raises on the board: retried however often they repeat.
GARBLED = ("SyntaxError", "IndentationError", "UnicodeError", "NameError", "ValueError: garbled")
PACK_WBITS = 10  # deflate window 1 KiB: what a board needs to inflate a file
HASH_BATCH = 8  # files per hash listing: a short answer is less likely to be garbled
READ_TRIES = 8  # attempts at a listing: reading twice is harmless, and long answers meet more faults

# One per stage, in order; progress(stage, done, total) is called with them.
STAGES = ("firmware", "connect", "compare", "write", "verify", "switch", "romfs", "reset", "agent")


class FlashError(Exception):
    """A flash failed; the message says what and where, the hint what to do about it."""

    def __init__(self, message, hint=None, fatal=False):
        Exception.__init__(self, message)
        self.message = message
        self.hint = hint
        self.fatal = fatal  # retrying cannot help (the board's flash is full)

    def __str__(self):
        return self.message + ("\nhint: " + self.hint if self.hint else "")


class FlashResult:
    """What one flash did. ok is False with error set when it failed."""

    def __init__(self, port):
        self.port = port
        self.ok = False
        self.error = None
        self.bundle = None
        self.board = None
        self.devid = None
        self.info = None  # the agent's `info` answer after the flash
        self.sent = []  # device paths written
        self.skipped = []  # device paths already right on the device
        self.removed = []  # device paths of an older bundle, removed
        self.bytes_sent = 0  # file bytes written (before base64)
        self.wire_bytes = 0  # bytes of code sent on the line while writing files (every command)
        self.retries = 0
        self.seconds = 0.0
        self.write_seconds = 0.0
        self.previous = None  # bundle version the board had
        self.entered = None  # how the raw REPL was reached: "repl", "agent" (Exec) or "reset"

    def __repr__(self):
        return "<FlashResult %s ok=%s sent=%d skipped=%d %s>" % (
            self.port, self.ok, len(self.sent), len(self.skipped), self.error or "")


def _noop(stage, done=0, total=0):
    pass


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


def _open_error(port, exc):
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

    def __init__(self, port, baud=DEFAULT_BAUD, progress=_noop):
        import serial

        Transport, self.TransportError, self.TransportExecError = _transport_class()
        self.port = port
        self.baud = baud
        self.progress = progress
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
            raise _open_error(port, exc) from None
        try:
            self.t = Transport(port, baudrate=baud, exclusive=True, timeout=1)
        except self.TransportError as exc:
            raise _open_error(port, exc) from None

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
        its key if it has one), or by a hardware reset and Ctrl-C in main.py's escape window."""
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
                             "to Exec %s, with its key in --key or the key store (`dmagent keys list`)"
                             % REPL_NODE)
        if not heard:
            raise FlashError("no board answers on %s (nothing came back)" % self.port,
                             "is this the board's port (`dmagent ports`)? Is it powered and running "
                             "MicroPython? A board without MicroPython needs --firmware first")
        raise FlashError("the raw REPL on %s cannot be reached (the board answers: %r)"
                         % (self.port, bytes(heard[-60:])),
                         "an agent serving the console ignores Ctrl-C: give --as SERVERID (an "
                         "owner, security.owners, to Exec %s), or reset the board and flash within its 2 s "
                         "escape window. ESP32 boards reset by RTS (EN) and DTR (GPIO0): a USB-UART "
                         "without those lines wired needs the EN button pressed while flashing "
                         "starts" % REPL_NODE)

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
        """Pulse RTS (the ESP32 auto-reset circuit's EN), then Ctrl-C through the escape window."""
        ser = self.t.serial
        try:
            ser.dtr = False
            ser.rts = True
            time.sleep(0.1)
            ser.rts = False
        except (OSError, ValueError, AttributeError):
            # No modem lines (a pseudo-terminal): a virtual board has a reset button instead.
            from dmagent.host_tools.vboard.board import press_reset

            if not press_reset(self.port):
                return False
            wait += 2.0  # it boots from power-on
        deadline = time.monotonic() + wait
        seen = bytearray()
        while time.monotonic() < deadline:
            ser.write(b"\x03")
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
        checked = "_c(%r,%r)" % (code, _check(code.encode()))
        last = None
        for attempt in range(tries):
            try:
                if not self.helpers:
                    self.run(_DEFINE_HELPERS, timeout)
                    self.helpers = True
                out = self.run(checked, timeout)
                return parse(out) if parse else out
            except self.TransportExecError as exc:
                error = _last_line(exc.error_output)
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
                if READY in seen and seen.endswith(b"\n"):
                    return True, bytes(seen)
                if b"Traceback" in seen and seen.endswith(b">>> "):
                    raise FlashError("the agent did not start on %s after the flash:\n%s"
                                     % (self.port, _tail(seen)),
                                     "the files are in place and verified; the board's output above "
                                     "says why it stopped")
            elif seen and time.monotonic() - heard > quiet:
                break  # the board has said what it will say
        return False, bytes(seen)


def _tail(output):
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

_PROBE_CODE = """import sys,os,binascii
def _r(p):
 try:
  with open(p) as f:return f.read()
 except OSError:return None
try:
 import machine;u=binascii.hexlify(machine.unique_id()).decode()
except Exception:
 u=None
try:
 s=tuple(os.statvfs('/'))
except Exception:
 s=None
try:
 import deflate;z=1
except ImportError:
 z=0
print(repr({'deflate':z,'impl':sys.implementation.name,'ver':tuple(sys.implementation.version[:3]),'mpy':getattr(sys.implementation,'_mpy',None),'platform':sys.platform,'uid':u,'statvfs':s,'config':_r(%r),'record':_r(%r)}))
"""

# The switch, as boot.py finishes it: "tmp<TAB>final" renames, "<TAB>path" removes.
_SWITCH_CODE = """import os
def _sw(j):
 try:
  with open(j) as f:lines=f.read().split('\\n')
 except OSError:
  return
 for l in lines:
  t,_,d=l.partition('\\t')
  if not d:continue
  try:
   if t:
    os.stat(t);os.rename(t,d)
   else:
    os.remove(d)
  except OSError:
   pass
 os.remove(j)
_sw(%r)
print('SWITCHED')
"""


def _parse_hashes(paths):
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


def _parse_probe(out):
    value = ast.literal_eval(out.decode().strip())
    if not isinstance(value, dict) or "impl" not in value:
        raise ValueError("garbled probe answer")
    return value


def device_hashes(repl, paths, what="reading file hashes"):
    """{device path: sha256 hex or None (missing)}, computed on the board."""
    paths = list(paths)
    result = {}
    for i in range(0, len(paths), HASH_BATCH):
        part = paths[i:i + HASH_BATCH]
        result.update(repl.call("_hl(%r)" % (part,), _parse_hashes(part), timeout=10, what=what,
                                tries=READ_TRIES))
    return result


# --- what goes onto the board ----------------------------------------------------------------------
def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _dirs(path):
    """Every folder above a device path, outermost first: /lib/agent/mo/x.mpy -> /lib, /lib/agent, ..."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]


def _merge(base, over):
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(config):
    """None, a dict, or a JSON file path -> dict or None, checked by the agent's own loader
    (agent.config): a config the board would refuse is refused here, before flashing."""
    from dmagent.agent import config as checker

    try:
        if config is None or isinstance(config, dict):
            return checker.check(config, "given") if config is not None else None
        return checker.load(str(config))
    except checker.ConfigError as exc:
        raise FlashError(str(exc)) from None


def load_key(path):
    """(principal, the file's bytes) of a key file from `dmagent keys new`, checked by the one
    key-file reader (agent.keys, with its warning for a file others may read)."""
    from dmagent.host_tools.client.keys import KeyFileError, load_key_file

    try:
        principal = load_key_file(path)[0]
        return principal, Path(path).read_bytes()
    except (KeyFileError, OSError) as exc:
        raise FlashError(str(exc), 'a key file is JSON {"principal", "key"}: make one with `dmagent keys new`') from None


def device_config(bundle, existing, config=None, devid=None, uid=None):
    """The config file for the device: the given config over the board's defaults, else what
    the device has, else the board's defaults; DevId from devid, else kept, else made from
    the board's unique id."""
    base = bundle.manifest.get("config") or {}
    current = None
    if existing:
        try:
            current = json.loads(existing)
        except ValueError:
            current = None
    if config is not None:
        cfg = _merge(base, config)
    elif current is not None:
        cfg = current
    else:
        cfg = _merge(base, {})
    dev = dict(cfg.get("device") or {})
    old = (current or {}).get("device", {}).get("devid")
    if devid:
        dev["devid"] = devid
    elif not dev.get("devid"):
        dev["devid"] = old or "urn:dmagent:%s-%s" % (bundle.board, uid or os.urandom(4).hex())
    cfg["device"] = dev
    return cfg


def _config_bytes(cfg):
    return (json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode()


# --- firmware through esptool -----------------------------------------------------------------------
_esptool_route = threading.local()
_esptool_lock = threading.Lock()
_esptool_ready = []


def _install_esptool_logger():
    """esptool logs through one global logger: route its progress to the calling thread's bar."""
    with _esptool_lock:
        if _esptool_ready:
            return
        from esptool.logger import TemplateLogger, log

        class Route(TemplateLogger):
            def _sink(self):
                return getattr(_esptool_route, "progress", None)

            def print(self, *args, **kwargs):
                note = getattr(_esptool_route, "note", None)
                if note:
                    note(" ".join(str(a) for a in args))

            def note(self, message):
                self.print(message)

            def warning(self, message):
                self.print("warning: " + message)

            def error(self, message):
                self.print("error: " + message)

            def stage(self, finish=False):
                pass

            def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
                sink = self._sink()
                if sink:
                    sink("firmware", cur_iter, total_iters)

            def set_verbosity(self, verbosity):
                pass

        log.set_logger(Route())
        _esptool_ready.append(True)


def flash_firmware(port, firmware, chip="auto", address=0x1000, baud=460800, erase=True,
                   progress=_noop, note=None):
    """Write MicroPython firmware with esptool (as a library), then hard-reset the board."""
    try:
        from esptool.cmds import attach_flash, detect_chip, erase_flash, reset_chip, run_stub, write_flash
        from esptool.util import FatalError
    except ImportError:
        raise FlashError("esptool is not installed", "pip install -c constraints.txt esptool") from None
    if not Path(firmware).is_file():
        raise FlashError("firmware file %s not found" % firmware,
                         "download MicroPython for the board (boards/<board>/README.md says where)")
    _install_esptool_logger()
    _esptool_route.progress = progress
    _esptool_route.note = note
    if isinstance(address, str):
        address = int(address, 0)
    try:
        with detect_chip(port) as esp:
            name = esp.CHIP_NAME.lower().replace("-", "")
            if chip not in ("auto", None) and name != chip.lower().replace("-", ""):
                raise FlashError("%s has an %s, the board wants %s" % (port, esp.CHIP_NAME, chip),
                                 "pick the right --board, or the right port")
            esp = run_stub(esp)
            if baud and baud != esp.ESP_ROM_BAUD:
                esp.change_baud(baud)
            attach_flash(esp)
            if erase:
                progress("firmware", 0, 1)
                erase_flash(esp)
            write_flash(esp, [(address, str(firmware))])
            reset_chip(esp, "hard-reset")
    except FatalError as exc:
        raise FlashError("esptool on %s: %s" % (port, exc),
                         "hold BOOT (GPIO0) and tap EN to enter the bootloader if auto-reset fails; "
                         "close other programs using the port") from None
    except OSError as exc:
        raise _open_error(port, exc) from None
    finally:
        _esptool_route.progress = None
        _esptool_route.note = None
    time.sleep(2.0)  # first boot: MicroPython makes its file system


# --- the flash -------------------------------------------------------------------------------------
def resolve_bundle(board):
    """A Bundle, a bundle folder, or a board name (built now)."""
    if isinstance(board, Bundle):
        bundle = board
    elif (Path(str(board)) / "manifest.json").exists():
        bundle = Bundle.load(board)
    else:
        try:
            bundle = build(board)
        except BuildError as exc:
            raise FlashError(str(exc)) from None
    try:
        bundle.check()
    except BuildError as exc:
        raise FlashError(str(exc)) from None
    return bundle


def flash(port, board, firmware=None, config=None, keys=(), progress=_noop, *, baud=DEFAULT_BAUD,
          devid=None, principal=None, erase=True, chunk=CHUNK, wait_agent=True):
    """Flash one board: optional firmware, the bundle's files, config with identity, keys;
    check every hash on the device; soft-reset; wait for the agent's `info`.

    board: a Bundle, a bundle folder or a board name. config: dict or JSON file (over the
    board's defaults). keys: key files from `dmagent keys new`. progress(stage, done, total).
    Returns a FlashResult; raises FlashError on failure (nothing half-written is switched in).
    """
    result = FlashResult(port)
    start = time.monotonic()
    bundle = resolve_bundle(board)
    result.bundle = bundle.version
    result.board = bundle.board
    config = load_config(config)
    key_files = [load_key(k) for k in keys]
    if firmware:
        fw = bundle.manifest.get("firmware") or {}
        if fw.get("port") == "rp2":  # a UF2 goes over USB mass storage, not a serial line
            raise FlashError("board %s takes firmware as a .uf2 copied onto its RPI-RP2 drive, not over %s"
                             % (bundle.board, port), "hold BOOTSEL while plugging it in, copy %s onto the "
                             "drive, then flash again without --firmware" % Path(firmware).name)
        flash_firmware(port, firmware, fw.get("chip", "auto"), fw.get("address", 0x1000),
                       fw.get("baud", 460800), erase, progress)
    progress("connect", 0, 1)
    repl = Repl(port, baud, progress)
    try:
        result.entered = repl.enter(principal, key=_key_of(principal, key_files))
        progress("connect", 1, 1)
        if bundle.romfs_image:  # rp2: the agent goes to the ROMFS partition (host_tools/flash/romfs.py)
            from dmagent.host_tools.flash import romfs

            romfs.check_partition(repl, bundle)
        _deploy(repl, bundle, result, config, devid, key_files, progress, chunk)
        if bundle.romfs_image:
            romfs.deploy(repl, bundle, progress)
        progress("reset", 0, 1)
        ready, said = repl.soft_reset_to_agent()
        progress("reset", 1, 1)
    finally:
        result.retries = repl.retries
        repl.close()
    on_console = ready and b"console" in said.split(READY, 1)[1].split(b"\n", 1)[0]
    if not ready or (wait_agent and on_console):
        progress("agent", 0, 1)
        try:
            result.info = agent_info(port, baud)
        except FlashError:
            if ready:
                raise
            raise FlashError("the agent did not say it started on %s, nor answer there:\n%s" % (port, _tail(said)),
                             "the files are in place and verified; the board's output above may say "
                             "why (or its agent serves other links than the console)") from None
        result.devid = result.info.get("devid") or result.devid
        progress("agent", 1, 1)
    result.ok = True
    result.seconds = time.monotonic() - start
    return result


def _key_of(principal, key_files):
    """principal's key: from the key files being provisioned, else the user's key store."""
    if principal is None:
        return None
    from dmagent.host_tools.client.keys import KeyFileError, find_key, load_key_file

    for name, raw in key_files:
        if name == principal:
            return bytes.fromhex(json.loads(raw)["key"])
    path = find_key(principal)
    if path is None:
        return None
    try:
        return load_key_file(path)[1]
    except KeyFileError as exc:
        raise FlashError(str(exc)) from None


def agent_info(port, baud=DEFAULT_BAUD, timeout=10.0):
    """The agent's `info` over the port it serves (retried while it starts)."""
    from dmagent.host_tools.client.device import Device, DeviceError
    from dmagent.host_tools.client.transport import LinkError

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with Device.open("serial://%s?baud=%d" % (port, baud), timeout=1.0, retries=1) as dev:
                return dev.info()
        except (LinkError, DeviceError) as exc:
            last = exc
            time.sleep(0.3)
    raise FlashError("the agent on %s does not answer `info`: %s" % (port, last),
                     "the flash itself is complete and verified; look at the console "
                     "(`mpremote connect %s`) right after a reset" % port)


def _deploy(repl, bundle, result, config, devid, key_files, progress, chunk):
    paths = bundle.manifest["paths"]
    probe = repl.call(_PROBE_CODE % (paths["config"], RECORD), _parse_probe, what="probing the board")
    _check_runtime(repl.port, probe, bundle)
    repl.deflate = bool(probe.get("deflate"))
    record = _record(probe.get("record"))
    result.previous = record.get("bundle")

    # What the board should hold: the bundle, its config, the keys.
    want = [(e["path"], None, e["sha256"], e["size"]) for e in bundle.files]
    cfg = device_config(bundle, probe.get("config"), config, devid, probe.get("uid"))
    result.devid = cfg["device"]["devid"]
    extra = {paths["config"]: _config_bytes(cfg)}
    for principal, raw in key_files:
        extra["%s/%s.key" % (paths["keys"].rstrip("/"), principal)] = raw
    for path, data in sorted(extra.items()):
        want.append((path, data, _sha(data), len(data)))
    new_record = {"bundle": bundle.version, "board": bundle.board,
                  "files": {p: s for p, _, s, _ in want}}
    record_bytes = (json.dumps(new_record, sort_keys=True) + "\n").encode()

    progress("compare", 0, len(want))
    all_paths = [p for p, _, _, _ in want]
    have = device_hashes(repl, all_paths + [p + TMP for p in all_paths], "comparing files")
    progress("compare", len(want), len(want))
    send = []
    switch = []  # (tmp, final)
    for path, data, digest, size in want:
        if have.get(path) == digest:
            result.skipped.append(path)
            continue
        if have.get(path + TMP) != digest:  # a verified copy from a cut-off flash is reused
            send.append((path, data, digest, size))
        switch.append((path + TMP, path))
    keys_dir = paths["keys"].rstrip("/") + "/"
    # Files of the last flash this one does not bring go, except keys: provisioned once,
    # a key stays until a flash brings a new one for its principal.
    stale = sorted(p for p in set(record.get("files", {})) - set(all_paths) - {RECORD}
                   if not p.startswith(keys_dir))
    if not switch and not stale and record.get("bundle") == bundle.version:
        return  # nothing to do: every file is right and the record says so
    largest = max([size for _, _, _, size in send] or [0])  # its packed copy, while it inflates
    _check_space(repl.port, probe.get("statvfs"), send, len(record_bytes) + largest)

    # Folders, then every changed file under its temporary name, each checked.
    dirs = sorted({d for path, _, _, _ in send for d in _dirs(path)}, key=len)
    if dirs:
        repl.call("import os\nfor d in %r:\n try:\n  os.mkdir(d)\n except OSError:\n  pass\n" % (dirs,),
                  what="making folders")
    total = sum(size for _, _, _, size in send)
    done = [0]
    progress("write", 0, total)
    t_write, sent_before = time.monotonic(), repl.sent
    for path, data, digest, size in send:
        if data is None:
            data = bundle.read(path)
        _write_verified(repl, path + TMP, data, digest, chunk,
                        lambda n: progress("write", done[0] + n, total))
        done[0] += size
        result.sent.append(path)
        result.bytes_sent += size
    result.write_seconds = time.monotonic() - t_write
    result.wire_bytes = repl.sent - sent_before
    progress("write", total, total)

    # The switch: boot.py first (it finishes a cut-off switch), main.py last, old files out.
    _write_verified(repl, RECORD + TMP, record_bytes, _sha(record_bytes), chunk, lambda n: None)
    switch.append((RECORD + TMP, RECORD))
    order = {"/boot.py": 0, "/main.py": 2}
    switch.sort(key=lambda pair: order.get(pair[1], 1))
    lines = ["%s\t%s" % pair for pair in switch] + ["\t%s" % path for path in stale]
    journal = ("\n".join(lines) + "\n").encode()
    progress("switch", 0, 1)
    _write_verified(repl, JOURNAL + TMP, journal, _sha(journal), chunk, lambda n: None)
    # Run twice (its answer lost on the line), the rename finds the journal already armed.
    repl.call("import os\ntry:\n os.rename(%r,%r)\nexcept OSError:\n os.stat(%r)\n"
              % (JOURNAL + TMP, JOURNAL, JOURNAL), what="arming the switch")
    repl.call(_SWITCH_CODE % JOURNAL, lambda out: _expect(out, b"SWITCHED"), what="switching files in")
    result.removed = stale
    progress("switch", 1, 1)

    # Every file, as the board will boot it.
    progress("verify", 0, len(want))
    final = device_hashes(repl, all_paths + [JOURNAL], "verifying files")
    bad = [p for p, _, digest, _ in want if final.get(p) != digest]
    for _ in range(TRIES):  # a digit garbled on the way back is still hex: read those again
        if not bad:
            break
        again = device_hashes(repl, bad, "verifying files")
        expected = {p: digest for p, _, digest, _ in want}
        bad = [p for p in bad if again.get(p) != expected[p]]
    if final.get(JOURNAL) is not None:
        bad.append(JOURNAL)
    if bad:
        raise FlashError("after the switch, %s on %s do not match the bundle" % (", ".join(bad), repl.port),
                         "flash again; boot.py finishes or repeats an interrupted switch")
    progress("verify", len(want), len(want))


def _expect(out, marker):
    if marker not in out:
        raise ValueError("no %r in %r" % (marker, out[-60:]))
    return out


def _record(text):
    try:
        record = json.loads(text) if text else {}
    except ValueError:
        record = {}
    return record if isinstance(record, dict) else {}


def _check_runtime(port, probe, bundle):
    if probe.get("impl") != "micropython":
        raise FlashError("%s runs %s, not MicroPython" % (port, probe.get("impl")),
                         "flash MicroPython first (--firmware FILE)")
    sys_mpy = probe.get("mpy")
    want = tuple(int(x) for x in bundle.manifest["mpy"].split("."))
    version = ".".join(map(str, probe.get("ver") or ()))
    if sys_mpy is None:
        raise FlashError("MicroPython %s on %s cannot import .mpy files" % (version, port),
                         "flash a MicroPython build with .mpy support (every stock firmware has it)")
    have = abi_from_sys_mpy(sys_mpy)
    if have[0] != want[0]:
        raise FlashError(".mpy version mismatch: MicroPython %s on %s loads .mpy v%s, the bundle is v%s"
                         % (version, port, abi_text(have), bundle.manifest["mpy"]),
                         "flash MicroPython %s firmware (--firmware FILE), or build with an mpy-cross "
                         "matching the board's MicroPython %s" % (bundle.manifest["micropython"], version))


def _check_space(port, statvfs, send, extra):
    if not statvfs:
        return
    bsize = statvfs[1] or statvfs[0]
    free = bsize * statvfs[4]
    blocks = sum(-(-size // bsize) + 1 for _, _, _, size in send) + 2 + -(-extra // bsize)
    need = blocks * bsize
    if need > free:
        raise FlashError("not enough flash on %s: the new files need %d KiB, %d KiB are free"
                         % (port, need // 1024, free // 1024),
                         "remove files from the board (`mpremote rm`), or erase it and flash the "
                         "firmware again (--firmware FILE)")


def _write_verified(repl, path, data, digest, chunk, on_bytes):
    """Write data to path on the board, then check its sha256 there; retried on a noisy line."""
    last = None
    for attempt in range(TRIES):
        try:
            _write(repl, path, data, chunk, on_bytes)
            got = device_hashes(repl, [path], "checking " + path)[path]
            if got == digest:
                return
            last = "it arrived different (sha256 %s, want %s)" % (got and got[:12], digest[:12])
        except repl.TransportExecError as exc:
            last = _last_line(exc.error_output)
            repl.resync()
            _close_quietly(repl)
        except repl.TransportError as exc:
            last = str(exc) or type(exc).__name__
            repl.resync()
            _close_quietly(repl)
        except FlashError as exc:
            if exc.fatal:
                raise
            last = exc.message
        repl.retries += 1
    raise FlashError("writing %s on %s failed %d times: %s" % (path, repl.port, TRIES, last),
                     "the line is noisy or the board's flash is failing: try a lower --baud or "
                     "another cable; the board still boots what it had")


def _check(data):
    """What _c compares on the board: the first 8 hex digits of the code's sha256."""
    return hashlib.sha256(data).hexdigest()[:8].encode()


def _chunk_check(offset, part):
    return _check(str(offset).encode() + part)


def _packed(data):
    """data deflated (raw, a 1 KiB window), or None where that saves less than a tenth."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -PACK_WBITS)
    packed = packer.compress(data) + packer.flush()
    return packed if len(packed) < len(data) * 0.9 else None


def _write(repl, path, data, chunk, on_bytes):
    """Put data in path on the board: deflated if the board can inflate it and that pays,
    the wire being the slow part. (Its hash is checked on the board after.)"""
    packed = _packed(data) if repl.deflate else None
    if packed is None:
        _send(repl, path, data, chunk, on_bytes)
        return
    _send(repl, path + ".z", packed, chunk, lambda n: on_bytes(n * len(data) // len(packed)))
    repl.call("_x(%r,%r)" % (path + ".z", path), what="inflating " + path)


def _send(repl, path, data, chunk, on_bytes):
    """Open, write chunk by chunk through the raw REPL, close. A chunk the line garbled is
    refused by the board and sent again (smaller), so one fault costs one chunk, not the file."""
    head = "_o(%r)" % path
    repl.call(head, what="opening " + path)
    sent = 0
    while sent < len(data):
        part = data[sent:sent + chunk]
        cmd = "w(%d,%r,%r)" % (sent, base64.b64encode(part), _chunk_check(sent, part))
        for attempt in range(CHUNK_TRIES):
            try:
                repl.run(cmd)
                break
            except repl.TransportExecError as exc:
                error = _last_line(exc.error_output)
                if "ENOSPC" in error or "[Errno 28]" in error:
                    raise FlashError("not enough flash on %s while writing %s" % (repl.port, path),
                                     "remove files from the board, or erase it and flash the firmware "
                                     "again (--firmware FILE)", fatal=True) from None
                if "NameError" in error:
                    raise  # the board lost the open file (it reset): start the file again
            except repl.TransportError:
                pass
            repl.retries += 1
            if attempt == CHUNK_TRIES - 1:
                raise FlashError("a chunk of %s was garbled %d times in a row" % (path, CHUNK_TRIES))
            repl.resync()
            if chunk > 128:  # a smaller chunk is less likely to meet the next fault
                chunk //= 2
                part = data[sent:sent + chunk]
                cmd = "w(%d,%r,%r)" % (sent, base64.b64encode(part), _chunk_check(sent, part))
        sent += len(part)
        on_bytes(sent)
    repl.call("f.close()", what="closing " + path)


def _last_line(error_output):
    lines = error_output.strip().splitlines()
    return lines[-1] if lines else ""


def _close_quietly(repl):
    """After a failed write: close the board's handle now, not whenever its gc finalises it
    (a late close could write stale data over the retry's file)."""
    try:
        repl.run("try:\n f.close()\nexcept Exception:\n pass\n")
    except (repl.TransportError, FlashError):
        pass


# --- several boards at once -----------------------------------------------------------------------
def flash_many(ports, board, firmware=None, config=None, keys=(), progress_for=None, **kw):
    """Flash each port in its own thread; progress_for(port) gives that port's progress callback.
    Returns the FlashResults in the order of ports (failed ones with ok False and error set)."""
    ports = list(ports)
    if len(ports) > 1 and kw.get("devid"):
        raise FlashError("one --devid for %d boards: every board needs its own identity" % len(ports),
                         "leave --devid out (each board's DevId is made from its unique id)")
    bundle = resolve_bundle(board)  # built once, shared

    def one(port):
        progress = progress_for(port) if progress_for else _noop
        try:
            return flash(port, bundle, firmware, config, keys, progress, **kw)
        except FlashError as exc:
            res = FlashResult(port)
            res.error = exc
            res.bundle = bundle.version
            res.board = bundle.board
            return res
        except Exception as exc:  # one board's surprise must not stop the others
            res = FlashResult(port)
            res.error = FlashError("%s: %s" % (type(exc).__name__, exc))
            return res

    if len(ports) == 1:
        return [one(ports[0])]
    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        return list(pool.map(one, ports))


# --- the command ---------------------------------------------------------------------------------------
def _click_command():
    import sys

    import click
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    @click.command("flash")
    @click.argument("ports", nargs=-1)
    @click.option("--board", "board", metavar="NAME", help="build and flash this board (boards/NAME)")
    @click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False), help="flash a built bundle folder")
    @click.option("--firmware", type=click.Path(dir_okay=False), help="write this MicroPython firmware first (esptool)")
    @click.option("--config", type=click.Path(dir_okay=False), help="device config (JSON) over the board's defaults")
    @click.option("--key", "keys", multiple=True, type=click.Path(dir_okay=False), help="key file to provision (repeat)")
    @click.option("--devid", help="the board's DevId (default: kept, or made from its unique id)")
    @click.option("--baud", default=DEFAULT_BAUD, show_default=True)
    @click.option("--as", "principal", metavar="SERVERID", help="an owner (security.owners) that may Exec ./DevDetail/Ext/Repl")
    @click.option("--no-erase", is_flag=True, help="with --firmware: do not erase the flash first")
    def flash_command(ports, board, bundle_dir, firmware, config, keys, devid, baud, principal, no_erase):
        """Flash the agent onto one or more MicroPython boards (PORTS: paths, or `auto`)."""
        from dmagent.host_tools.client.ports import PortError, resolve

        out = Console(stderr=True, highlight=False)
        if bool(board) == bool(bundle_dir):
            raise click.UsageError("give --board NAME or --bundle DIR")
        try:
            ports = [resolve(p) for p in (ports or ("auto",))]
        except PortError as exc:
            out.print("[red]error:[/] %s" % exc)
            sys.exit(2)
        try:
            target = resolve_bundle(bundle_dir or board)
        except FlashError as exc:
            out.print("[red]error:[/] %s" % exc)
            sys.exit(2)
        out.print("flashing %s (%s, .mpy v%s, %d files, %.1f KiB) to %s"
                  % (target.version, target.board, target.manifest["mpy"], len(target.files),
                     target.manifest["total"] / 1024, ", ".join(ports)))
        bars = Progress(TextColumn("{task.fields[port]}"), TextColumn("{task.description:<9}"), BarColumn(),
                        DownloadColumn(), TimeElapsedColumn(), console=out)
        tasks = {p: bars.add_task("waiting", total=1, port=p) for p in ports}

        def progress_for(port):
            def update(stage, done=0, total=0):
                bars.update(tasks[port], description=stage, completed=done, total=total or 1)
            return update

        with bars:
            results = flash_many(ports, target, firmware, config, keys, progress_for, baud=baud, devid=devid,
                                 principal=principal, erase=not no_erase)
        table = Table(title="flash summary")
        for col in ("port", "result", "DevId", "sent", "skipped", "time"):
            table.add_column(col)
        for res in results:
            table.add_row(res.port, "[green]ok[/]" if res.ok else "[red]failed[/]", res.devid or "",
                          "%d (%.1f KiB)" % (len(res.sent), res.bytes_sent / 1024), str(len(res.skipped)),
                          "%.1f s" % res.seconds)
        Console(highlight=False).print(table)
        for res in results:
            if res.ok and res.info:
                Console(highlight=False).print("%s: %s %s, agent %s on %s" % (
                    res.port, res.info.get("devid"), res.bundle, res.info.get("agent"), res.info.get("runtime")))
            if not res.ok:
                out.print("[red]error:[/] %s" % res.error)
        sys.exit(0 if all(r.ok for r in results) else 1)

    return flash_command


try:
    flash_command = _click_command()
except ImportError:  # click and rich are install requirements; only a bare import lacks them
    flash_command = None
