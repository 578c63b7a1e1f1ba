"""What every part of the flasher raises, and the progress callback it calls by default.

A FlashError carries a hint (what to do about it) that the CLI prints on its own line;
`fatal` marks the failures a retry cannot mend (a full flash), which the retry loops let through.
"""


class FlashError(Exception):
    """A flash failed; the message says what and where, the hint what to do about it."""

    def __init__(self, message, hint=None, fatal=False):
        Exception.__init__(self, message)
        self.message = message
        self.hint = hint
        self.fatal = fatal  # retrying cannot help (the board's flash is full)

    def __str__(self):
        return self.message + ("\nhint: " + self.hint if self.hint else "")


def no_progress(stage, done=0, total=0):
    """progress(stage, done, total) for callers that draw nothing."""
