// What board.mjs (the UART side, main thread) and interp.mjs (the MicroPython side, a worker)
// share: a control block and a receive ring in SharedArrayBuffers that outlive each worker.
//
// The ring is the board's UART receive buffer: board.mjs is its only writer, the worker its
// only reader. HEAD and TAIL count bytes (mod 2^32); the ring size is a power of two.

export const RING_SIZE = 1 << 16;

export const HEAD = 0; // bytes ever written into the ring by board.mjs
export const TAIL = 1; // bytes ever taken out of it by the worker
export const STATE = 2; // 0: the worker is idle in its event loop; 1: it is running Python
export const INTR_CHAR = 3; // the interrupt character as the worker last saw it (-1: off)
export const INTR_REQ = 4; // 1: board.mjs asks the worker to raise KeyboardInterrupt
export const GEN = 5; // counts the worker's runs of Python (busy periods)
export const SEQ = 6; // bumped on every push or interrupt request: the word workers wait on
export const MODE = 7; // 0: friendly REPL, 1: raw REPL (as seen in the REPL's output)
export const PHASE = 8; // 0: booting (boot.py, main.py), 1: at the REPL
export const CTRL_WORDS = 16;

export const IDLE = 0;
export const BUSY = 1;
export const MODE_FRIENDLY = 0;
export const MODE_RAW = 1;
export const PHASE_BOOT = 0;
export const PHASE_REPL = 1;

export function ringAvail(ctrl) {
  return (Atomics.load(ctrl, HEAD) - Atomics.load(ctrl, TAIL)) >>> 0;
}
