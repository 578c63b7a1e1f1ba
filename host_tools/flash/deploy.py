"""Deploy a bundle to MicroPython boards over the raw REPL: firmware, files, identity, keys.

Every file is written under a temporary name and its sha256 checked on the device; only then
does one switch, listed first in /.dmflash (which boot.py finishes after a power cut), rename
them all in. A flash that fails part way leaves the board booting the agent it had before.
Library first: flash() and flash_many() return results; `dmagent flash` (cli/flash.py) draws them.
"""

import ast
import base64
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dmagent.firmware_build.bundle import Bundle, build
from dmagent.firmware_build.mpy import BuildError
from dmagent.host_tools.flash.errors import FlashError, no_progress
from dmagent.host_tools.flash.firmware import flash_firmware
from dmagent.host_tools.flash.plan import (JOURNAL, RECORD, TMP, check_runtime, check_space, parse_record, plan,
                                   record_bytes, sha)
from dmagent.host_tools.flash.provision import config_bytes, device_config, key_of, load_config, load_key
from dmagent.host_tools.flash.repl import (DEFAULT_BAUD, PACK_WBITS, READY, TRIES, Repl, board_check, device_hashes,
                                   last_line, tail)

CHUNK = 1024  # bytes per write command (base64 in the raw REPL); halved on trouble
CHUNK_TRIES = 8  # attempts per chunk of a file (each checked on the board before it is written)

# One per stage, in order; progress(stage, done, total) is called with them.
STAGES = ("firmware", "connect", "compare", "write", "verify", "switch", "romfs", "reset", "agent")


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


# --- code that runs on the board ---------------------------------------------------------------
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


def _parse_probe(out):
    value = ast.literal_eval(out.decode().strip())
    if not isinstance(value, dict) or "impl" not in value:
        raise ValueError("garbled probe answer")
    return value


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


def flash(port, board, firmware=None, config=None, keys=(), progress=no_progress, *, baud=DEFAULT_BAUD,
          devid=None, principal=None, erase=True, chunk=CHUNK, wait_agent=True, reset=None):
    """Flash one board: optional firmware, the bundle's files, config with identity, keys;
    check every hash on the device; soft-reset; wait for the agent's `info`.

    board: a Bundle, a bundle folder or a board name. config: dict or JSON file (over the
    board's defaults). keys: key files from `dmagent keys new`. progress(stage, done, total).
    reset(port, serial): how to reset this board into its REPL (default: RTS, then any
    strategy a board kind registered with repl.register_reset).
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
    repl = Repl(port, baud, progress, reset)
    try:
        result.entered = repl.enter(principal, key=key_of(principal, key_files))
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
            raise FlashError("the agent did not say it started on %s, nor answer there:\n%s" % (port, tail(said)),
                             "the files are in place and verified; the board's output above may say "
                             "why (or its agent serves other links than the console)") from None
        result.devid = result.info.get("devid") or result.devid
        progress("agent", 1, 1)
    result.ok = True
    result.seconds = time.monotonic() - start
    return result


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
    check_runtime(repl.port, probe, bundle)
    repl.deflate = bool(probe.get("deflate"))
    record = parse_record(probe.get("record"))
    result.previous = record.get("bundle")

    # What the board should hold: the bundle, its config, the keys.
    want = [(e["path"], None, e["sha256"], e["size"]) for e in bundle.files]
    cfg = device_config(bundle, probe.get("config"), config, devid, probe.get("uid"))
    result.devid = cfg["device"]["devid"]
    extra = {paths["config"]: config_bytes(cfg)}
    for principal, raw in key_files:
        extra["%s/%s.key" % (paths["keys"].rstrip("/"), principal)] = raw
    for path, data in sorted(extra.items()):
        want.append((path, data, sha(data), len(data)))
    new_record = record_bytes(bundle.version, bundle.board, want)

    progress("compare", 0, len(want))
    all_paths = [p for p, _, _, _ in want]
    have = device_hashes(repl, all_paths + [p + TMP for p in all_paths], "comparing files")
    progress("compare", len(want), len(want))
    todo = plan(want, have, record, bundle.version, paths["keys"])
    result.skipped.extend(todo.skipped)
    if todo.nothing_to_do:
        return  # every file is right and the record says so
    check_space(repl.port, probe.get("statvfs"), todo.send, len(new_record) + todo.largest)

    # Folders, then every changed file under its temporary name, each checked.
    if todo.folders:
        repl.call("import os\nfor d in %r:\n try:\n  os.mkdir(d)\n except OSError:\n  pass\n" % (todo.folders,),
                  what="making folders")
    total = todo.total
    done = [0]
    progress("write", 0, total)
    t_write, sent_before = time.monotonic(), repl.sent
    for path, data, digest, size in todo.send:
        if data is None:
            data = bundle.read(path)
        write_verified(repl, path + TMP, data, digest, chunk,
                       lambda n: progress("write", done[0] + n, total))
        done[0] += size
        result.sent.append(path)
        result.bytes_sent += size
    result.write_seconds = time.monotonic() - t_write
    result.wire_bytes = repl.sent - sent_before
    progress("write", total, total)

    # The switch: boot.py first (it finishes a cut-off switch), main.py last, old files out.
    write_verified(repl, RECORD + TMP, new_record, sha(new_record), chunk, lambda n: None)
    journal = todo.journal([(RECORD + TMP, RECORD)])
    progress("switch", 0, 1)
    write_verified(repl, JOURNAL + TMP, journal, sha(journal), chunk, lambda n: None)
    # Run twice (its answer lost on the line), the rename finds the journal already armed.
    repl.call("import os\ntry:\n os.rename(%r,%r)\nexcept OSError:\n os.stat(%r)\n"
              % (JOURNAL + TMP, JOURNAL, JOURNAL), what="arming the switch")
    repl.call(_SWITCH_CODE % JOURNAL, lambda out: _expect(out, b"SWITCHED"), what="switching files in")
    result.removed = todo.stale
    progress("switch", 1, 1)

    # Every file, as the board will boot it.
    progress("verify", 0, len(want))
    final = device_hashes(repl, all_paths + [JOURNAL], "verifying files")
    expected = todo.expected  # a key file the board wrapped stays as it was
    bad = [p for p in all_paths if final.get(p) != expected[p]]
    for _ in range(TRIES):  # a digit garbled on the way back is still hex: read those again
        if not bad:
            break
        again = device_hashes(repl, bad, "verifying files")
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


def write_verified(repl, path, data, digest, chunk, on_bytes):
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
            last = last_line(exc.error_output)
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


def _chunk_check(offset, part):
    return board_check(str(offset).encode() + part)


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
                error = last_line(exc.error_output)
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
        progress = progress_for(port) if progress_for else no_progress
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
