"""`dmagent serve -v`: one log line per request the agent answers, with a timestamp, the link,
the principal, the op and URI, the status and the time taken.

It wraps the dispatcher from outside (the agent itself stays as a board runs it), so it
sees every request after the security layer opened it, as the agent does.
"""

import sys
import time

from dmagent.agent import proto as P
from dmagent.agent import uri as U

OP_NAMES = {v: k[3:].lower() for k, v in vars(P).items() if k.startswith("OP_") and isinstance(v, int)}


def log_requests(app, write=None):
    """Log each request app's dispatcher handles (to stderr unless write is given)."""
    write = write or (lambda line: print(line, file=sys.stderr, flush=True))
    handle = app.dispatcher.handle

    def traced(session, request):
        start = time.monotonic()
        response = handle(session, request)
        op = request.get(P.K_OP) if isinstance(request, dict) else None
        uri = request.get(P.K_URI, "") if isinstance(request, dict) else ""
        if isinstance(uri, tuple):  # the dispatcher's canonical form: (segments, property, ...)
            uri = U.format(uri[0]) + ("?prop=" + uri[1] if uri[1] else "") + ("?list=" + uri[2] if uri[2] else "")
        status = response.get(P.K_STATUS) if isinstance(response, dict) else None
        write("%s %s %s %s %s -> %s %s (%.1f ms)" % (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()), getattr(session, "name", "?"),
            getattr(session, "principal", None) or "-", OP_NAMES.get(op, op), uri, status,
            P.STATUS_TEXT.get(status, ""), (time.monotonic() - start) * 1000))
        return response

    app.dispatcher.handle = traced
