// The virtual board's CPU: one MicroPython interpreter (the pinned WebAssembly build) in a
// worker thread. board.mjs starts a fresh worker at power-on and at every soft reset, so
// every boot gets a fresh interpreter, as on a board.
//
// UART: input comes from the shared ring (shared.mjs); output goes straight to fd 1 with
// blocking writes, so a slow reader holds the board back as a full TX FIFO would.
// Storage: the board's file system is Emscripten's in-memory FS under /flash, loaded from
// the host folder at boot and written through to it by every write, truncate, mkdir,
// rename, unlink and rmdir (the FS calls are wrapped). MicroPython sees /flash as "/".
// HAL: a JS module `_vboard_js` (AES from node:crypto, randomness, the receive buffer),
// wrapped by vboard_hal.py, which is put in sys.modules (it is not a file on the board).

import { parentPort, workerData } from "node:worker_threads";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript/micropython.mjs";
import * as S from "./shared.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { ctrlBuf, ringBuf, dir, reason, heapsize, pystack } = workerData;
const ctrl = new Int32Array(ctrlBuf);
const ring = new Uint8Array(ringBuf);
const FLASH = "/flash";
const TMP_SUFFIX = ".vboard-tmp~"; // never loaded: left only by a power cut mid-rename
// The board's NVS (esp32.NVS's blobs, for vboard_hal.NVS): a partition of its own, not part
// of the file system, so no file call on the board reaches it. Kept in the board's folder.
const NVS_NAME = ".vboard-nvs.json";

// ---- UART output ------------------------------------------------------------------------
const out = Buffer.alloc(4096);
let outLen = 0;
let lastFlush = Date.now();
let suppress = 0; // >0: output is dropped (REPL set-up the board does behind the scenes)
let scanTail = ""; // the end of the previous output, for markers split across writes
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function writeAll(buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
      Atomics.wait(sleeper, 0, 0, 2);
    }
  }
}

// The REPL mode, from the REPL's own words: it prints this line on entering the raw REPL
// and its banner on leaving it. board.mjs needs the mode to restore it in a new worker.
const RAW_MARK = "raw REPL; CTRL-B to exit\r\n";
const FRIENDLY_MARK = 'Type "help()" for more information.\r\n';

function scanMode(chunk) {
  const text = scanTail + chunk.toString("latin1");
  const raw = text.lastIndexOf(RAW_MARK);
  const friendly = text.lastIndexOf(FRIENDLY_MARK);
  if (raw >= 0 || friendly >= 0) {
    Atomics.store(ctrl, S.MODE, raw > friendly ? S.MODE_RAW : S.MODE_FRIENDLY);
  }
  scanTail = text.slice(-40);
}

function flush() {
  if (Atomics.load(ctrl, S.STATE) === S.BUSY) pollInterrupt();
  send();
}

// Output only, for putByte's end-of-line sends: the REPL echoes a line before its code
// runs, when the interpreter's interrupt character is not yet the one to publish.
function send() {
  if (outLen) {
    const chunk = Buffer.from(out.subarray(0, outLen));
    outLen = 0;
    scanMode(chunk);
    writeAll(chunk);
  }
  lastFlush = Date.now();
}

function putByte(c) {
  if (suppress) return;
  if (dropOutput) {
    dropOutput--;
    return;
  }
  out[outLen++] = c;
  // A UART sends as it goes: a line, a full buffer or a pause ends up on the wire now.
  if (outLen === out.length || (outLen & 63) === 0 && Date.now() - lastFlush > 5) flush();
  else if (c === 10) send();
}

// ---- interrupts -------------------------------------------------------------------------
let mp = null;

function publishInterruptChar() {
  if (mp) Atomics.store(ctrl, S.INTR_CHAR, mp._module._mp_hal_get_interrupt_char());
}

// Called from every JS entry the interpreter makes (console I/O, HAL calls): a Ctrl-C that
// board.mjs caught while Python runs becomes a pending KeyboardInterrupt here.
// A request board.mjs made while its copy of the interrupt character was stale (Python had
// turned Ctrl-C off since it last called out) is moot: a board's UART decides by the
// character at the moment the byte arrives. That byte is lost (the frame holding it fails
// its check and is sent again), never an interrupt.
function pollInterrupt() {
  publishInterruptChar();
  if (Atomics.load(ctrl, S.INTR_REQ) && Atomics.compareExchange(ctrl, S.INTR_REQ, 1, 0) === 1) {
    if (mp._module._mp_hal_get_interrupt_char() !== 3) return false;
    mp._module._mp_sched_keyboard_interrupt();
    return true;
  }
  return false;
}

// ---- UART input -------------------------------------------------------------------------
function takeBytes(buffer, offset, length) {
  const tail = Atomics.load(ctrl, S.TAIL);
  const n = Math.min(S.ringAvail(ctrl), length);
  for (let i = 0; i < n; i++) buffer[offset + i] = ring[(tail + i) & (S.RING_SIZE - 1)];
  Atomics.store(ctrl, S.TAIL, (tail + n) | 0);
  if (n) parentPort.postMessage({ type: "drained" });
  return n;
}

// read() on fd 0: waits for at least one byte, then returns what has arrived (a tty with
// VMIN=1). A Ctrl-C while it waits ends the wait with 0 bytes and a pending interrupt.
function stdinRead(stream, buffer, offset, length) {
  for (;;) {
    if (S.ringAvail(ctrl) > 0) return takeBytes(buffer, offset, length);
    if (pollInterrupt()) throw new mp.FS.ErrnoError(EINTR); // MicroPython then raises it
    flush();
    const seq = Atomics.load(ctrl, S.SEQ);
    if (S.ringAvail(ctrl) === 0 && !Atomics.load(ctrl, S.INTR_REQ)) Atomics.wait(ctrl, S.SEQ, seq, 100);
  }
}

const EINTR = 27; // Emscripten's errno numbering
const POLLIN = 1;
const POLLOUT = 4;

function patchStdin() {
  const stream = mp.FS.getStream(0);
  stream.stream_ops = Object.assign({}, stream.stream_ops, {
    read: stdinRead,
    poll: () => {
      pollInterrupt();
      return S.ringAvail(ctrl) > 0 ? POLLIN | POLLOUT : POLLOUT;
    },
  });
}

// ---- the file system: /flash, written through to the host folder -----------------------
function hostPath(p) {
  const abs = path.posix.resolve(mp.FS.cwd(), p);
  if (abs !== FLASH && !abs.startsWith(FLASH + "/")) return null;
  return path.join(dir, abs.slice(FLASH.length));
}

function loadTree(hostDir, fsDir) {
  for (const ent of fs.readdirSync(hostDir, { withFileTypes: true })) {
    const h = path.join(hostDir, ent.name);
    const f = fsDir + "/" + ent.name;
    if (hostDir === dir && ent.name === NVS_NAME) {
      continue;
    } else if (ent.name.endsWith(TMP_SUFFIX)) {
      fs.rmSync(h, { force: true });
    } else if (ent.isDirectory()) {
      mp.FS.mkdir(f);
      loadTree(h, f);
    } else if (ent.isFile()) {
      mp.FS.writeFile(f, fs.readFileSync(h));
    }
  }
}

const O_ACCMODE = 3;
const O_CREAT = 64;
const O_TRUNC = 512;

function mirrorFS() {
  const FS = mp.FS;
  const orig = {};
  for (const name of ["open", "close", "write", "truncate", "ftruncate", "mkdir", "rmdir", "unlink", "rename"]) {
    orig[name] = FS[name].bind(FS);
  }
  FS.open = (p, flags, mode) => {
    const stream = orig.open(p, flags, mode);
    const host = typeof p === "string" ? hostPath(p) : null;
    if (host && FS.isFile(stream.node.mode) && (stream.flags & O_ACCMODE) !== 0) {
      let hflags = fs.constants.O_WRONLY;
      if (stream.flags & O_CREAT) hflags |= fs.constants.O_CREAT;
      if (stream.flags & O_TRUNC) hflags |= fs.constants.O_TRUNC;
      stream.vboardFd = fs.openSync(host, hflags, 0o644);
    }
    return stream;
  };
  FS.write = (stream, buffer, offset, length, position, canOwn) => {
    const n = orig.write(stream, buffer, offset, length, position, canOwn);
    if (stream.vboardFd !== undefined && n > 0) {
      const at = typeof position === "number" ? position : stream.position - n;
      const bytes = Buffer.from(buffer.buffer, buffer.byteOffset + offset, n);
      let done = 0;
      while (done < n) done += fs.writeSync(stream.vboardFd, bytes, done, n - done, at + done);
    }
    return n;
  };
  FS.close = (stream) => {
    const fd = stream.vboardFd;
    stream.vboardFd = undefined;
    try {
      return orig.close(stream);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  };
  FS.truncate = (p, len) => {
    const r = orig.truncate(p, len);
    const host = typeof p === "string" ? hostPath(p) : null;
    if (host) fs.truncateSync(host, len);
    return r;
  };
  FS.ftruncate = (fd, len) => {
    const r = orig.ftruncate(fd, len);
    const stream = FS.getStream(fd);
    if (stream && stream.vboardFd !== undefined) fs.ftruncateSync(stream.vboardFd, len);
    return r;
  };
  FS.mkdir = (p, mode) => {
    const r = orig.mkdir(p, mode);
    const host = hostPath(p);
    if (host) fs.mkdirSync(host, { recursive: true });
    return r;
  };
  FS.rmdir = (p) => {
    const r = orig.rmdir(p);
    const host = hostPath(p);
    if (host) fs.rmSync(host, { recursive: true, force: true });
    return r;
  };
  FS.unlink = (p) => {
    const r = orig.unlink(p);
    const host = hostPath(p);
    if (host) fs.rmSync(host, { force: true });
    return r;
  };
  FS.rename = (a, b) => {
    const r = orig.rename(a, b);
    const ha = hostPath(a);
    const hb = hostPath(b);
    if (ha && hb) fs.renameSync(ha, hb);
    return r;
  };
}

// ---- the HAL module ---------------------------------------------------------------------
const ciphers = new Map(); // (key hex, direction) -> a node:crypto ECB cipher without padding

function aesEcb(keyHex, dataHex, encrypt) {
  pollInterrupt();
  const id = keyHex + (encrypt ? "e" : "d");
  let c = ciphers.get(id);
  if (!c) {
    const key = Buffer.from(keyHex, "hex");
    const alg = "aes-" + key.length * 8 + "-ecb";
    c = encrypt ? crypto.createCipheriv(alg, key, null) : crypto.createDecipheriv(alg, key, null);
    c.setAutoPadding(false);
    if (ciphers.size >= 16) ciphers.delete(ciphers.keys().next().value);
    ciphers.set(id, c);
  }
  // ECB without padding keeps no state between whole blocks, so the object is reused.
  return c.update(Buffer.from(dataHex, "hex")).toString("hex");
}

function nvsLoad() {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, NVS_NAME), "utf8"));
  } catch (e) {
    return {};
  }
}

const RUNTIME = "MicroPython 1.27.0, WebAssembly (pyscript variant), Node.js " + process.versions.node;

const halJs = {
  aes_ecb: (keyHex, dataHex, encrypt) => aesEcb(keyHex, dataHex, encrypt),
  urandom: (n) => {
    pollInterrupt();
    return crypto.randomBytes(n).toString("hex");
  },
  uart_any: () => {
    pollInterrupt();
    return S.ringAvail(ctrl);
  },
  uart_read: (n) => {
    pollInterrupt();
    const buf = Buffer.alloc(Math.max(0, Math.min(n, S.ringAvail(ctrl))));
    return takeBytes(buf, 0, buf.length) ? buf.toString("hex") : "";
  },
  fs_rename: (oldPath, newPath) => {
    try {
      mp.FS.rename(FLASH + oldPath, FLASH + newPath); // the mirror renames on the host too
      return 0;
    } catch (e) {
      if (e && typeof e.errno === "number") return e.errno;
      throw e;
    }
  },
  nvs_get: (ns, key) => {
    pollInterrupt();
    const all = nvsLoad();
    return (all[ns] && all[ns][key]) || "";
  },
  nvs_set: (ns, key, hex) => {
    pollInterrupt();
    const all = nvsLoad();
    (all[ns] = all[ns] || {})[key] = hex;
    const file = path.join(dir, NVS_NAME);
    fs.writeFileSync(file + TMP_SUFFIX, JSON.stringify(all), { mode: 0o600 });
    fs.renameSync(file + TMP_SUFFIX, file);
    return null;
  },
  runtime: () => RUNTIME,
  fs_dir: () => dir,
};

// ---- boot ---------------------------------------------------------------------------------
function runPython(code) {
  Atomics.add(ctrl, S.GEN, 1);
  Atomics.store(ctrl, S.STATE, S.BUSY);
  try {
    return mp.runPython(code);
  } finally {
    Atomics.store(ctrl, S.STATE, S.IDLE);
    flush();
  }
}

const SETUP = `
def _vboard_setup(src, msg):
    import sys, vfs, os
    import _vboard_js
    class FlashVfs(vfs.VfsPosix):
        # This build's VfsPosix.rename makes both paths in one buffer when both are
        # absolute, so it renames the target onto itself (ENOENT); a board's does not.
        def rename(self, old, new):
            if old[:1] == '/' and new[:1] == '/':
                err = _vboard_js.fs_rename(old, new)
                if err:
                    raise OSError(err)
            else:
                super().rename(old, new)
    vfs.umount('/')
    vfs.mount(FlashVfs('${FLASH}'), '/')
    os.chdir('/')
    ns = {'__name__': 'vboard_hal'}
    exec(src, ns)
    class VboardHal:
        pass
    m = VboardHal()
    for k, v in ns.items():
        setattr(m, k, v)
    sys.modules['vboard_hal'] = m
    if msg:
        print(msg % m.heap()[0])
_vboard_setup(_vboard_src, _vboard_msg)
del _vboard_setup, _vboard_src, _vboard_msg
`;

// Runs a file from the board's file system the way a board's pyexec_file does: Ctrl-C on,
// an uncaught exception printed, never raised further. Returns false if the file raised
// SystemExit (a board then skips main.py) -- true otherwise.
const RUN_FILE = `
def _vboard_run(name):
    import os, sys, micropython
    try:
        os.stat(name)
    except OSError:
        return True
    g = {'__name__': '__main__', '__file__': name}
    micropython.kbd_intr(3)
    try:
        with open(name) as f:
            src = f.read()
        exec(compile(src, name, 'exec'), g)
    except SystemExit:
        return False
    except BaseException as e:
        sys.print_exception(e)
    finally:
        micropython.kbd_intr(-1)
    return True
`;

function runFile(name) {
  Atomics.store(ctrl, S.INTR_CHAR, 3);
  return runPython(`_vboard_ok = _vboard_run(${JSON.stringify(name)})`) !== false;
}

function bootFiles() {
  Atomics.store(ctrl, S.PHASE, S.PHASE_BOOT);
  runPython(RUN_FILE);
  runFile("boot.py");
  const bootOk = mp.globals.get("_vboard_ok");
  if (bootOk && Atomics.load(ctrl, S.MODE) === S.MODE_FRIENDLY) runFile("main.py");
  runPython("del _vboard_run, _vboard_ok");
}

// ---- the REPL -----------------------------------------------------------------------------
// The build's event-driven REPL gets the board's input one byte at a time. Two things are
// done here rather than in it:
// - raw-paste mode (Ctrl-E A Ctrl-A at an empty raw-REPL line, what mpremote uses): the
//   build would answer it and then read the code through mp_hal_stdin_rx_chr, which in
//   this port is a stub returning 0 for ever. So the board speaks the raw-paste protocol
//   itself (the build's window: 128 bytes, flow control with 0x01) and hands the code to
//   the raw REPL as if it had been sent the plain way, minus the "OK" that answer starts
//   with.
// - soft reset: the REPL asks for it (Ctrl-D at an empty prompt) and board.mjs starts a
//   fresh worker.
const PASTE_WINDOW = 128;
let stopped = false;
let replStarted = false;
let claimed = false; // vboard_hal.console_claim(): the console's input is for Python, not the REPL
let rawLine = ""; // the start of the raw REPL's current line, as far as it was fed here
let paste = null; // {code: [], count} while a raw paste is being received
let dropOutput = 0; // bytes of REPL output to drop (the "OK" of a pasted exec)

function emit(text) {
  for (const c of Buffer.from(text, "latin1")) putByte(c);
}

function startRepl(quiet) {
  Atomics.store(ctrl, S.PHASE, S.PHASE_REPL);
  replStarted = true;
  rawLine = "";
  const raw = Atomics.load(ctrl, S.MODE) === S.MODE_RAW;
  // The REPL starts friendly and prints its banner; a raw-mode board enters raw at once.
  suppress += raw || quiet ? 1 : 0;
  mp.replInit();
  if (raw) {
    mp.replProcessChar(1);
    suppress -= 1;
    if (!quiet) emit(RAW_MARK + ">");
  } else if (quiet) {
    suppress -= 1;
  }
  Atomics.store(ctrl, S.MODE, raw ? S.MODE_RAW : S.MODE_FRIENDLY);
  flush();
}

// Feeds one byte to the REPL. Returns false when the REPL asked for a soft reset.
function feed(c) {
  const raw = Atomics.load(ctrl, S.MODE) === S.MODE_RAW;
  // Only a byte that may start running code turns Ctrl-C on: a Ctrl-C that arrives while
  // the REPL merely stores a byte must reach the REPL as a byte.
  const runs = raw ? c === 4 : c === 13 || c === 10;
  const before = outLen;
  Atomics.add(ctrl, S.GEN, 1);
  Atomics.store(ctrl, S.INTR_CHAR, runs ? 3 : -1);
  Atomics.store(ctrl, S.STATE, S.BUSY);
  let ret;
  try {
    ret = mp.replProcessChar(c);
  } finally {
    Atomics.store(ctrl, S.STATE, S.IDLE);
    Atomics.store(ctrl, S.INTR_CHAR, -1);
  }
  if (raw) {
    if (c <= 4) rawLine = "";
    else if (rawLine.length < 4) rawLine += String.fromCharCode(c);
  }
  if (c <= 5 || c === 13) flush(); // keeps the REPL mode (seen in the output) up to date
  if (ret !== 0) {
    // Ctrl-D at an empty prompt: soft reset. The raw REPL answers "OK" first, so the
    // output tells which REPL asked; the next boot comes up in the same one.
    const said = out.subarray(before, outLen).toString("latin1");
    if (said.startsWith("OK") || raw) Atomics.store(ctrl, S.MODE, S.MODE_RAW);
    else Atomics.store(ctrl, S.MODE, S.MODE_FRIENDLY);
    return false;
  }
  if (Atomics.compareExchange(ctrl, S.INTR_REQ, 1, 0) === 1) {
    // A Ctrl-C that board.mjs caught but no running code saw: the REPL gets it as a byte.
    return feed(3);
  }
  return true;
}

function pasteByte(c) {
  if (c === 4 || c === 3) {
    const code = paste.code;
    paste = null;
    emit("\x04");
    if (c === 3) {
      // The paste was cancelled: a board raises KeyboardInterrupt while it reads the code.
      emit("\x04KeyboardInterrupt: \r\n\x04>");
      flush();
      return true;
    }
    suppress += 1;
    for (const b of code) feed(b);
    suppress -= 1;
    dropOutput = 2; // the "OK" of a plain raw-REPL exec
    return feed(4);
  }
  paste.code.push(c);
  if (++paste.count % PASTE_WINDOW === 0) {
    emit("\x01"); // another window is free
    flush();
  }
  return true;
}

function step(c) {
  if (paste) return pasteByte(c);
  if (c === 1 && rawLine === "\x05A" && Atomics.load(ctrl, S.MODE) === S.MODE_RAW) {
    suppress += 1;
    feed(3); // clears the "\x05A" the raw REPL holds
    suppress -= 1;
    paste = { code: [], count: 0 };
    emit("R\x01" + String.fromCharCode(PASTE_WINDOW & 0xff, PASTE_WINDOW >> 8) + "\x01");
    flush();
    return true;
  }
  return feed(c);
}

// While Python has the console (console_claim(handler)), every arrival runs handler():
// the agent reads the ring itself (uart_read) and answers on stdout. No REPL, no polling.
let rxHandler = null;
let rxBusy = false;

function serveClaimed() {
  if (rxBusy || !rxHandler) return;
  rxBusy = true;
  try {
    while (!stopped && claimed && rxHandler && S.ringAvail(ctrl) > 0) {
      const before = Atomics.load(ctrl, S.TAIL);
      Atomics.add(ctrl, S.GEN, 1);
      Atomics.store(ctrl, S.STATE, S.BUSY);
      publishInterruptChar();
      try {
        rxHandler();
      } catch (e) {
        parentPort.postMessage({ type: "log", message: "console handler raised: " + String(e && e.message ? e.message : e) });
      } finally {
        Atomics.store(ctrl, S.STATE, S.IDLE);
        flush();
      }
      if (Atomics.load(ctrl, S.TAIL) === before) break; // it took nothing: wait for the next kick
    }
  } finally {
    rxBusy = false;
  }
}

function pump() {
  if (stopped) return;
  if (claimed) {
    serveClaimed();
    return;
  }
  if (!replStarted) return;
  const one = new Uint8Array(1);
  while (!stopped && !claimed && S.ringAvail(ctrl) > 0) {
    takeBytes(one, 0, 1);
    if (!step(one[0])) {
      flush();
      stopped = true;
      parentPort.postMessage({ type: "softreset" });
      return;
    }
  }
  flush();
}

halJs.console_claim = (handler) => {
  claimed = true;
  rxHandler = typeof handler === "function" ? handler : null;
  if (rxHandler) setTimeout(pump, 0); // bytes that came before the claim
  return null;
};
halJs.console_release = () => {
  if (claimed) {
    claimed = false;
    rxHandler = null;
    setTimeout(() => {
      if (!replStarted) startRepl(false);
      pump();
    }, 0);
  }
  return null;
};

// ---- start ----------------------------------------------------------------------------------
async function main() {
  mp = await loadMicroPython({
    heapsize,
    pystack,
    linebuffer: false,
    stdout: (a) => putByte(a[0]),
    stderr: (a) => putByte(a[0]),
    stdin: () => null, // replaced by stdinRead below
  });
  patchStdin();
  mp.FS.mkdir(FLASH);
  fs.mkdirSync(dir, { recursive: true });
  loadTree(dir, FLASH);
  mirrorFS();
  // The import system looks paths up in Emscripten's FS directly, not through the VFS
  // mounted on "/": "/lib" on sys.path must reach the board's /lib.
  mp.FS.symlink(FLASH + "/lib", "/lib");
  mp.registerJsModule("_vboard_js", halJs);

  const src = fs.readFileSync(path.join(HERE, "vboard_hal.py"), "utf8");
  mp.globals.set("_vboard_src", src);
  mp.globals.set(
    "_vboard_msg",
    reason === "power" ? `vboard: power on; ${RUNTIME}; heap %d B used (grows on demand: no cap); fs ${dir}\r` : "",
  );
  runPython(SETUP);
  parentPort.postMessage({ type: "up" });

  if (reason === "interrupt") {
    // A Ctrl-C the interpreter could not see (a loop that never calls out) ended the last
    // worker; board.mjs printed the KeyboardInterrupt. The REPL comes back, no boot files.
    startRepl(Atomics.load(ctrl, S.PHASE) === S.PHASE_REPL);
  } else {
    bootFiles();
    if (!claimed) startRepl(false);
  }
  parentPort.postMessage({ type: "ready" });
  parentPort.on("message", (m) => {
    if (m.type === "kick") pump();
  });
  pump();
}

main().catch((e) => {
  flush();
  parentPort.postMessage({ type: "fatal", message: String(e && e.stack ? e.stack : e) });
});
