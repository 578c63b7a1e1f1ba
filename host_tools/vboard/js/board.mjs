#!/usr/bin/env node
// dmagent's virtual board: a MicroPython board whose UART is this process's stdin/stdout.
//
//   node board.mjs --dir DIR [--heap BYTES] [--grace MS]
//
// stdin carries the bytes a host sends to the board, stdout the bytes the board sends back;
// host_tools/vboard/board.py puts a pseudo-terminal in front (baud-rate limit, line faults).
// stderr carries one-line status messages for the host side ("vboard: up", ...).
//
// This thread is the UART: it fills the receive ring and watches for Ctrl-C. The
// interpreter runs in a worker (interp.mjs) so that this thread stays responsive while
// Python runs. A soft reset (Ctrl-D at an empty prompt) ends the worker and starts a fresh
// one, which boots: boot.py, then main.py in the friendly REPL.
//
// Ctrl-C while Python runs (and micropython.kbd_intr has not turned it off) is not put in
// the ring: the worker raises KeyboardInterrupt the next time the interpreter calls out to
// JS (console I/O, the HAL). Code that never calls out (`while True: pass`) cannot be
// reached in this build (it has no VM hook into JS), so after a grace time the worker is
// ended, this thread prints the KeyboardInterrupt, and a new worker resumes the REPL in the
// same mode without running the boot files: Python state (globals, imports) is lost.

import { Worker } from "node:worker_threads";
import fs from "node:fs";
import path from "node:path";
import * as S from "./shared.mjs";

function parseArgs(argv) {
  const args = { dir: null, heap: 110 * 1024, grace: 300, pystack: 2048 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--dir") args.dir = next();
    else if (a === "--heap") args.heap = parseInt(next(), 10);
    else if (a === "--grace") args.grace = parseInt(next(), 10);
    else usage(`unknown argument ${a}`);
  }
  if (!args.dir) usage("--dir is required");
  return args;
}

function usage(msg) {
  process.stderr.write(`vboard: ${msg}\nusage: node board.mjs --dir DIR [--heap BYTES] [--grace MS]\n`);
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));
const dir = path.resolve(args.dir);
fs.mkdirSync(dir, { recursive: true });

const ctrlBuf = new SharedArrayBuffer(S.CTRL_WORDS * 4);
const ringBuf = new SharedArrayBuffer(S.RING_SIZE);
const ctrl = new Int32Array(ctrlBuf);
const ring = new Uint8Array(ringBuf);
Atomics.store(ctrl, S.INTR_CHAR, -1);

function status(line) {
  try {
    fs.writeSync(2, line + "\n");
  } catch (e) {
    // nobody listens: fine
  }
}

function uartWrite(text) {
  const buf = Buffer.from(text, "latin1");
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
    }
  }
}

// ---- the receive ring -------------------------------------------------------------------------
let backlog = []; // chunks that did not fit in the ring yet
let worker = null;

function kick() {
  Atomics.add(ctrl, S.SEQ, 1);
  Atomics.notify(ctrl, S.SEQ);
  if (worker) worker.postMessage({ type: "kick" });
}

function fillRing() {
  let moved = false;
  while (backlog.length) {
    const chunk = backlog[0];
    const head = Atomics.load(ctrl, S.HEAD);
    const space = S.RING_SIZE - S.ringAvail(ctrl);
    const n = Math.min(space, chunk.length);
    if (n === 0) break;
    for (let i = 0; i < n; i++) ring[(head + i) & (S.RING_SIZE - 1)] = chunk[i];
    Atomics.store(ctrl, S.HEAD, (head + n) | 0);
    moved = true;
    if (n === chunk.length) backlog.shift();
    else backlog[0] = chunk.subarray(n);
  }
  if (moved) kick();
}

// ---- Ctrl-C -------------------------------------------------------------------------------------
let interruptTimer = null;

function interrupt() {
  Atomics.store(ctrl, S.INTR_REQ, 1);
  kick();
  if (interruptTimer) return;
  const gen = Atomics.load(ctrl, S.GEN);
  interruptTimer = setTimeout(() => {
    interruptTimer = null;
    const stuck =
      Atomics.load(ctrl, S.INTR_REQ) === 1 &&
      Atomics.load(ctrl, S.STATE) === S.BUSY &&
      Atomics.load(ctrl, S.GEN) === gen;
    if (stuck) forceInterrupt();
  }, args.grace);
}

function receive(data) {
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (
      data[i] === 3 &&
      Atomics.load(ctrl, S.STATE) === S.BUSY &&
      Atomics.load(ctrl, S.INTR_CHAR) === 3
    ) {
      if (i > start) backlog.push(data.subarray(start, i));
      start = i + 1;
      interrupt();
    }
  }
  if (start < data.length) backlog.push(data.subarray(start));
  fillRing();
}

// ---- the interpreter's worker ---------------------------------------------------------------
let generation = 0;

function startWorker(reason) {
  const me = ++generation;
  Atomics.store(ctrl, S.STATE, S.IDLE);
  Atomics.store(ctrl, S.INTR_REQ, 0);
  Atomics.store(ctrl, S.INTR_CHAR, -1);
  const w = new Worker(new URL("./interp.mjs", import.meta.url), {
    workerData: { ctrlBuf, ringBuf, dir, reason, heapsize: args.heap, pystack: args.pystack },
    stdout: false,
    stderr: false,
  });
  worker = w;
  w.on("message", (m) => {
    if (me !== generation) return;
    if (m.type === "drained") fillRing();
    else if (m.type === "up") status("vboard: up " + reason);
    else if (m.type === "ready") {
      status("vboard: ready");
      fillRing();
      kick();
    } else if (m.type === "softreset") restart("soft");
    else if (m.type === "log") status("vboard: " + m.message);
    else if (m.type === "fatal") {
      status("vboard: fatal: " + m.message.split("\n").join("\nvboard:   "));
      process.exit(1);
    }
  });
  w.on("error", (e) => {
    if (me !== generation) return;
    status("vboard: fatal: worker error: " + (e && e.stack ? e.stack : e));
    process.exit(1);
  });
}

function restart(reason) {
  const old = worker;
  worker = null;
  generation++;
  if (old) old.terminate();
  if (reason === "soft") uartWrite("MPY: soft reboot\r\n");
  startWorker(reason);
}

function forceInterrupt() {
  const raw = Atomics.load(ctrl, S.MODE) === S.MODE_RAW;
  const booting = Atomics.load(ctrl, S.PHASE) === S.PHASE_BOOT;
  const old = worker;
  worker = null;
  generation++;
  if (old) old.terminate();
  const tb = "Traceback (most recent call last):\r\n" +
    `  File "${booting ? "main.py" : "<stdin>"}", line 1, in <module>\r\n` +
    "KeyboardInterrupt: \r\n";
  if (booting) uartWrite(tb);
  else if (raw) uartWrite("\x04" + tb + "\x04>");
  else uartWrite(tb + ">>> ");
  status("vboard: ended a worker that did not see Ctrl-C (Python state lost)");
  startWorker("interrupt");
}

// ---- go ---------------------------------------------------------------------------------------
if (process.stdin.isTTY) process.stdin.setRawMode(true);
process.stdin.on("data", receive);
process.stdin.on("end", () => process.exit(0));
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(sig, () => process.exit(0));
startWorker("power");
