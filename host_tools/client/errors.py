"""The exceptions the client raises, under one base: catch `DmagentError` to catch them all.

DeviceError (client/device.py): the device answered with a non-2xx status. LinkError
(client/transport.py): the line could not be opened, broke, or stayed silent. UsageError: the
call itself was wrong (a bad URL, a key file for another principal, a value too big to send),
found before anything was sent.
"""


class DmagentError(Exception):
    """Anything the dmagent client raises; str() is one readable line. hint: what to do, or None."""

    hint = None


class UsageError(DmagentError, ValueError):
    """A bad call, refused before anything was sent; ValueError too, as it was before."""

    def __init__(self, message, hint=None):
        DmagentError.__init__(self, message)
        self.hint = hint
