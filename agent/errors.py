"""The one exception the agent's layers raise to answer a request with an OMA DM status.

Anything that is the requester's fault or a rule's verdict is a DMError with the status
to send back; any other exception reaching dispatch is a bug and answers 500.
"""


class DMError(Exception):
    def __init__(self, status, msg=""):
        super().__init__(status, msg)
        self.status = status
        self.msg = msg
