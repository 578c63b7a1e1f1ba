# vboard_hal: the virtual board's "hardware", for code running ON the board.
#
# The board (host_tools/vboard/js) puts this module in sys.modules at every boot; it is not
# a file on the board's file system. What it offers comes from Node.js through the
# WebAssembly build's JS bridge (`_vboard_js`, registered with registerJsModule):
#   aes_ecb_encrypt(key, block) / aes_ecb_decrypt(key, block)  AES on one 16-byte block
#   aes(key, mode=1)         cryptolib.aes look-alike, ECB only (what stock ESP32 firmware has)
#   urandom(n)               n random bytes from node:crypto
#   heap()                   (bytes in use, bytes free) from gc; the heap grows on demand
#                            in this build, so "free" is not a board's limit
#   uart_any(), uart_read(n) bytes waiting in the console's receive buffer, without blocking
#   console_claim(handler)   the console's input goes to Python only (uart_read): the REPL
#                            stops reading it, and after boot it does not start until
#                            console_release(). handler() (optional) is called whenever
#                            bytes wait, after main.py has returned: this build has no
#                            blocking loop a board's main.py could sit in, so an agent on
#                            the console is driven by arrivals (and Ctrl-C is its data)
#   console_release()        gives the console back to the REPL
#   NVS(namespace)           esp32.NVS look-alike (get_blob, set_blob, commit): a store
#                            outside the file system, kept by the board across power cuts
#   info()                   a dict describing the board
# Bytes cross the bridge as hex text: the bridge passes str both ways, not bytes.
import gc
from binascii import hexlify, unhexlify

import _vboard_js as _js

MODE_ECB = 1


def _hex(data):
    return hexlify(bytes(data)).decode()


def _check_key(key):
    if len(key) not in (16, 24, 32):
        raise ValueError("AES key must be 16, 24 or 32 bytes")


def aes_ecb_encrypt(key, block):
    """AES-ECB encryption of one 16-byte block: the agent's AES block primitive."""
    _check_key(key)
    if len(block) != 16:
        raise ValueError("AES block must be 16 bytes")
    return unhexlify(_js.aes_ecb(_hex(key), _hex(block), 1))


def aes_ecb_decrypt(key, block):
    _check_key(key)
    if len(block) != 16:
        raise ValueError("AES block must be 16 bytes")
    return unhexlify(_js.aes_ecb(_hex(key), _hex(block), 0))


class aes:
    """cryptolib.aes(key, 1): ECB, encrypt/decrypt of whole 16-byte blocks."""

    def __init__(self, key, mode=MODE_ECB, IV=None):
        if mode != MODE_ECB:
            raise ValueError("vboard_hal.aes: only ECB (mode 1), as on stock ESP32 firmware")
        _check_key(key)
        self._key = _hex(key)
        self._used = None

    def _run(self, direction, data, out):
        if self._used not in (None, direction):
            raise OSError("can't encrypt & decrypt")
        self._used = direction
        if len(data) % 16:
            raise ValueError("blksize % 16")
        result = unhexlify(_js.aes_ecb(self._key, _hex(data), direction))
        if out is None:
            return result
        out[: len(result)] = result
        return None

    def encrypt(self, data, out=None):
        return self._run(1, data, out)

    def decrypt(self, data, out=None):
        return self._run(0, data, out)


def urandom(n):
    """n bytes from node:crypto's CSPRNG."""
    if n < 0:
        raise ValueError("n < 0")
    if n == 0:
        return b""
    return unhexlify(_js.urandom(n))


def heap():
    """(bytes allocated, bytes free) on the MicroPython heap, as gc reports them."""
    return gc.mem_alloc(), gc.mem_free()


def uart_any():
    """How many bytes wait in the console's receive buffer."""
    return _js.uart_any()


def uart_read(n=256):
    """Up to n bytes from the console's receive buffer; b'' if none: never blocks."""
    text = _js.uart_read(n)
    return unhexlify(text) if text else b""


def console_claim(handler=None):
    """Keep the REPL off the console: its input is read by Python only; handler() is
    called each time bytes arrive (read them with uart_read)."""
    _js.console_claim(handler)


def console_release():
    """Give the console back to the REPL (which starts now if boot left it unstarted)."""
    _js.console_release()


class NVS:
    """esp32.NVS(namespace), blobs only: get_blob(key, buf) -> length (OSError ENOENT if
    missing), set_blob(key, data), commit(). Writes are kept at once."""

    def __init__(self, namespace):
        self._ns = namespace

    def get_blob(self, key, buf):
        text = _js.nvs_get(self._ns, key)
        if not text:
            raise OSError(2)
        data = unhexlify(text)
        if len(data) > len(buf):
            raise ValueError("buffer too small")
        buf[: len(data)] = data
        return len(data)

    def set_blob(self, key, data):
        _js.nvs_set(self._ns, key, _hex(data))

    def commit(self):
        pass


def info():
    """What this board is: runtime, file system folder, heap figures."""
    used, free = heap()
    return {
        "board": "vboard",
        "runtime": _js.runtime(),
        "fs": _js.fs_dir(),
        "heap_used": used,
        "heap_free": free,
        "heap_capped": False,
    }
