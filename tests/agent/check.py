"""Assertion helpers for agent tests, which run under CPython (pytest) and MicroPython alike.

Agent tests use only plain `assert` and these helpers: no pytest import, no fixtures,
no hypothesis (property tests against host libraries live in tests/host/).
"""


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exception of exc_type it raised; fail if it raised none."""
    try:
        fn(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise AssertionError("%s not raised by %r%r" % (exc_type.__name__, fn, args))


def unhex(text):
    """Bytes from hex text that may hold spaces and newlines (as in docs and RFCs)."""
    import binascii

    return binascii.unhexlify("".join(text.split()))


def tohex(data):
    import binascii

    return binascii.hexlify(data).decode()
