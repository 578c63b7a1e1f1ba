"""Request -> tree operation -> response: one decoded request map in, one response map out.

Every mutating request is one tree transaction whose journal records are on flash before
the response is built; if the write fails the tree is rolled back, so an acknowledged
change is never lost and an unacknowledged one never lingers. The ACLs live in the tree;
this layer makes each URI canonical once (agent.uri) and applies the device policy to that
form before the tree sees it: open reads, confidential subtrees, the owners-only REPL.
"""

import gc

from . import proto as P
from . import uri as U
from .errors import DMError
from .mo.ext import OWNER_ONLY


class Dispatcher:
    def __init__(self, tree, store=None, encode=None, info=None, open_reads=(), snapshot=None, guard=None):
        self.tree = tree
        self.store = store
        self._encode = encode  # cbor.dumps, for journal records
        self._snapshot = snapshot or tree.dump  # dump(write): the tree streamed, for compaction
        self.info = info or {}
        roots = []  # a loop, not a comprehension: one function less in the heap
        for uri in open_reads:
            roots.append(U.parse(uri)[0])
        self.open_reads = tuple(roots)
        self.guard = guard  # agent.secure.Guard (confidential subtrees, owners), or None

    # --- entry point -----------------------------------------------------
    def handle(self, session, request, again=True):
        """Answer one request map; never raises. again: once more if the heap ran out (a
        Sequence's items are not: the items before are done and persisted)."""
        if not isinstance(request, dict):
            return {P.K_STATUS: P.S_BAD_REQUEST, P.K_MSG: "request must be a CBOR map"}
        rid = request.get(P.K_ID)
        op = request.get(P.K_OP)
        tree = self.tree
        # Out of heap: rolled back and unwound, the request's own objects are garbage then and
        # a collection may give it the piece it lacked: once more. Not an Exec, whose handler
        # may have done what the tree does not show.
        again = again and op != P.OP_EXEC
        while True:
            response = {P.K_ID: rid} if rid is not None else {}
            try:
                if not isinstance(op, int) or isinstance(op, bool):
                    raise DMError(P.S_BAD_REQUEST, "op missing or not an integer")
                self._admit(session, op, request)
                response[P.K_STATUS] = self._run(session, op, request, response)
                return response
            except DMError as exc:
                if tree.in_transaction():
                    tree.rollback()
                response[P.K_STATUS] = exc.status
                if exc.msg:
                    response[P.K_MSG] = exc.msg
                return response
            except MemoryError:  # the heap, not the request: the tree as it was
                if tree.in_transaction():
                    tree.rollback()
            except Exception as exc:  # a bug: answer 500, keep serving, leave the tree as it was
                if tree.in_transaction():
                    tree.rollback()
                response[P.K_STATUS] = P.S_FAILED
                response[P.K_MSG] = "internal error: %s" % type(exc).__name__
                return response
            response = None
            gc.collect()
            if not again:
                break
            again = False
        response = {P.K_STATUS: P.S_DEVICE_FULL, P.K_MSG: "device out of memory"}
        if rid is not None:
            response[P.K_ID] = rid
        return response

    def _admit(self, session, op, request):
        """Who may reach what, decided on the canonical URIs before the tree sees them: 401 for
        an unauthenticated link beyond the open reads, 403 where policy refuses the request."""
        if op == P.OP_HELLO or op == P.OP_INFO:
            return
        if session.principal is None:  # only the open reads, and no URI error tells more
            try:
                segs = op in (P.OP_GET, P.OP_ACL) and self._canonical(op, request)[0][0]  # the reads
            except DMError:
                segs = False
            for root in self.open_reads:
                if segs is not False and segs[: len(root)] == root:
                    break
            else:
                raise DMError(P.S_AUTH_REQUIRED, "not authenticated")
        elif not 1 <= op <= P.OP_LAST:
            return  # _run answers it
        targets = self._canonical(op, request)  # made already: given back as they are
        guard = self.guard
        if guard is None:
            owner = False
        else:
            # The REPL's rule: a principal named in security.owners, speaking for itself: the
            # one the handshake proved (or an --insecure hello named), so that a gateway's
            # `for` never makes one (a Sequence's items carry no `for` of their own), nor
            # does a DMAcc account or an ACL.
            channel = session.channel
            protected = channel is not None and session.kind in (P.KIND_SEALED, P.KIND_SIGNED)
            speaker = channel.principal if protected else session.named
            owner = session.principal is not None and session.principal == speaker and speaker in guard.owners
            if guard.confidential and session.kind != P.KIND_SEALED:
                for segs, _, listing in targets:
                    if guard.needs_confidential(segs, listing):
                        raise DMError(P.S_FORBIDDEN, "%s needs an AES-CCM session" % U.format(segs))
        if op == P.OP_EXEC and targets[0][0] in OWNER_ONLY and not owner:
            raise DMError(P.S_FORBIDDEN, "for owners only")

    def _canonical(self, op, request, targets=None):
        """The request's URIs in canonical form (agent.uri), made once and written back into
        the request, so that all after sees only that form: its own (400/414 if bad), a
        Copy's source, and those of its items, nested (a bad one fails its item later).
        -> [(segs, prop, listing)], the request's own first."""
        parse = self.tree._parse
        if targets is None:
            targets = []
            if op != P.OP_ATOMIC and op != P.OP_SEQUENCE:
                target = request[P.K_URI] = parse(_uri(request))
                targets.append(target)
            keys = (P.K_SOURCE,)
        else:
            keys = (P.K_URI, P.K_SOURCE)
        for key in keys:
            if isinstance(request.get(key), str):
                try:
                    target = request[key] = parse(request[key])
                    targets.append(target)
                except DMError:
                    pass
        items = request.get(P.K_ITEMS)
        if type(items) is list:
            for item in items:
                if type(item) is dict:
                    self._canonical(None, item, targets)
        return targets

    # --- ops ---------------------------------------------------------------
    def _run(self, session, op, req, resp):
        if not 1 <= op <= P.OP_LAST:
            raise DMError(P.S_NOT_SUPPORTED, "unknown op %d" % op)
        if op == P.OP_HELLO or op == P.OP_INFO:
            if op == P.OP_HELLO:
                session.hello(req.get(P.K_SERVER))
            info = dict(self.info)
            info["principal"] = session.principal
            info["link"] = session.link_name
            channel = session.channel
            if channel is not None:
                info["suite"] = channel.suite
                info["rejected"] = channel.guard.rejected + session.dropped
            else:
                info["rejected"] = session.dropped
            info["starved"] = session.starved
            if self.store is not None and self.store.damage is not None:
                info["damage"] = self.store.damage
            if hasattr(gc, "mem_free"):  # MicroPython: the heap is the board's scarcest thing
                gc.collect()
                info["heap_used"] = gc.mem_alloc()
                info["heap_free"] = gc.mem_free()
            resp[P.K_VALUE] = info
            return P.S_OK
        if op in (P.OP_ADD, P.OP_REPLACE, P.OP_DELETE, P.OP_EXEC, P.OP_ATOMIC, P.OP_COPY):  # a transaction
            return self._mutate(session, op, req, resp)
        if op == P.OP_SEQUENCE:
            from . import extra_ops  # loaded on first use: the heap is for the common ops

            return extra_ops.sequence(self, session, req, resp)
        principal = session.principal
        uri = _uri(req)
        if op == P.OP_GET:
            if uri[2]:  # ?list=
                limit = req.get(P.K_LIMIT)
                if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
                    raise DMError(P.S_BAD_REQUEST, "limit must be a positive integer")
                entries, nxt = self.tree.list(principal, uri, _opt_text(req, P.K_CURSOR), limit)
                resp[P.K_VALUE] = entries
                if nxt is not None:
                    resp[P.K_NEXT] = nxt
                return P.S_OK
            value, fmt = self.tree.get(principal, uri)
            resp[P.K_VALUE] = value
            resp[P.K_FORMAT] = fmt
            return P.S_OK
        if op == P.OP_ACL:
            own, effective, source = self.tree.acl_info(principal, uri)
            resp[P.K_ACL] = own
            resp[P.K_EFFECTIVE] = effective
            resp[P.K_FROM] = source
            return P.S_OK
        if op == P.OP_CHECK:
            server = req.get(P.K_SERVER)
            cmd = req.get(P.K_CMD)
            if not isinstance(server, str) or not server:
                raise DMError(P.S_BAD_REQUEST, "check needs a server id")
            if cmd not in P.COMMANDS:
                raise DMError(P.S_BAD_REQUEST, "check needs a command: Add Delete Exec Get Replace")
            allowed, source = self.tree.check(principal, server, cmd, uri)
            if cmd == P.CMD_EXEC and uri[0] in OWNER_ONLY:  # the very rule _admit applies
                allowed = allowed and self.guard is not None and server in self.guard.owners
            resp[P.K_ALLOWED] = allowed
            resp[P.K_FROM] = source
            return P.S_OK
        raise DMError(P.S_NOT_SUPPORTED, "unknown op %d" % op)

    def _mutate(self, session, op, req, resp):
        store = self.store
        if store is not None and store.damage is not None:  # before anything runs, Exec too
            raise DMError(P.S_FAILED, store.damage)
        tree = self.tree
        tree.begin()
        if op == P.OP_ATOMIC:
            status = self._atomic(session, req, resp)
            if status != P.S_OK:
                return status  # _atomic rolled back already
        else:
            status = self._apply_one(session.principal, op, req, resp)
        records = tree.pending()
        frees = bool(records)  # only Deletes (before the reply record): a Delete still frees space
        for record in records:
            if record[0] != "del":
                frees = False
                break
        key = getattr(session, "reply_key", None)  # (scope, client token, rid): kept with the write
        kept = None
        # (A Sequence's items are their own transactions, without an id: not one of them.)
        if key is not None and P.K_ID in req and (records or op == P.OP_EXEC):
            resp[P.K_STATUS] = status
            kept = self._encode(resp)
            records = records + [["rep", key[0], key[1], key[2], kept]]  # see Replies.load
        if records and store is not None:
            # On flash, or DMError: 420 for any lack of room, 500 for a failed write. Not on
            # flash means not acknowledged: handle() rolls the tree back. A MemoryError is the
            # heap, not the storage: it goes up to handle() (420 too).
            try:
                try:
                    store.append(self._encode(records), frees)
                except Exception as exc:
                    if not (frees and _full(exc)):
                        raise
                    # A Delete on a full device: the snapshot of the tree with it applied, written
                    # in the reserve's room, persists it and gives the journal's space back.
                    store.compact(self._snapshot, True)
                    self._journal_replies(records)
            except MemoryError:
                raise
            except Exception as exc:
                if _full(exc):
                    raise DMError(P.S_DEVICE_FULL, "storage full: %s" % (exc.args[-1] if exc.args else ""))
                raise DMError(P.S_FAILED, "storage write failed: %r" % (exc,))
        tree.commit()
        if kept is not None:  # before compaction: the snapshot keeps it then
            session.durable.put(key[0], key[1], key[2], kept)
        if records and store is not None and store.should_compact(frees):
            try:
                store.compact(self._snapshot, frees)
            except Exception:
                return status  # the journal still holds everything; compaction is retried next time
            self._journal_replies()
        return status

    def _apply_one(self, principal, op, req, resp):
        uri = _uri(req)
        tree = self.tree
        if op == P.OP_ADD:
            tree.add(principal, uri, req.get(P.K_VALUE), _opt_text(req, P.K_FORMAT), _opt_text(req, P.K_TYPE))
            return P.S_OK
        if op == P.OP_REPLACE:
            if P.K_VALUE not in req:
                raise DMError(P.S_BAD_REQUEST, "replace needs a value")
            tree.replace(principal, uri, req[P.K_VALUE], _opt_text(req, P.K_FORMAT), _opt_text(req, P.K_TYPE))
            return P.S_OK
        if op == P.OP_DELETE:
            tree.delete(principal, uri)
            return P.S_OK
        if op == P.OP_COPY:
            from . import extra_ops

            extra_ops.copy(tree, principal, uri, req.get(P.K_SOURCE))
            return P.S_OK
        # OP_EXEC
        status, result = tree.execute(principal, uri, req.get(P.K_VALUE))
        if result is not None:
            resp[P.K_VALUE] = result
        return status

    def _atomic(self, session, req, resp):
        """All or nothing: on the first failure, undo what went before (216) and skip the rest (215)."""
        items = req.get(P.K_ITEMS)
        if not isinstance(items, list) or not items:
            raise DMError(P.S_BAD_REQUEST, "atomic needs a non-empty list of items")
        results = []
        failed_at = -1
        for i, item in enumerate(items):
            sub = {}
            try:
                if not isinstance(item, dict):
                    raise DMError(P.S_BAD_REQUEST, "atomic item must be a map")
                op = item.get(P.K_OP)
                if op not in (P.OP_ADD, P.OP_REPLACE, P.OP_DELETE, P.OP_COPY):
                    # OMA DM: Get, Atomic, Sequence may not be in an Atomic (500); Exec here is 406
                    raise DMError(P.S_NOT_SUPPORTED if op == P.OP_EXEC else P.S_FAILED, "not allowed in an atomic")
                sub[P.K_STATUS] = self._apply_one(session.principal, op, item, sub)
            except DMError as exc:
                sub[P.K_STATUS] = exc.status
                if exc.msg:
                    sub[P.K_MSG] = exc.msg
                failed_at = i
                results.append(sub)
                break
            results.append(sub)
        if failed_at < 0:
            resp[P.K_ITEMS] = results
            return P.S_OK
        rolled_back = P.S_ROLLED_BACK
        try:
            self.tree.rollback()
        except Exception:  # the undo itself failed: say so, as OMA DM does
            rolled_back = P.S_ROLLBACK_FAILED
            # Close the transaction so the next request can open one. Nothing of the batch
            # reached flash: a reboot brings back the state from before it.
            if self.tree.in_transaction():
                self.tree.commit()
        for sub in results[:failed_at]:
            sub[P.K_STATUS] = rolled_back
        for _ in range(failed_at + 1, len(items)):
            results.append({P.K_STATUS: P.S_NOT_EXECUTED})
        resp[P.K_ITEMS] = results
        resp[P.K_MSG] = "item %d failed" % failed_at
        return P.S_ATOMIC_FAILED if rolled_back == P.S_ROLLED_BACK else P.S_ROLLBACK_FAILED

    def _journal_replies(self, extra=()):
        """The kept write replies (and the reply records among extra, not kept yet) start a
        new journal after a compaction (a crash just before: the window is lost, no write is)."""
        replies = getattr(self, "replies", None)
        records = (replies.records if replies is not None else []) + list(extra)
        for record in records:  # one journal record each: a boot never needs one large block
            if record[0] != "rep":
                continue
            try:
                self.store.append(self._encode([record]))
            except Exception:
                return


def _full(exc):
    # By name and errno: agent.store is not imported where the agent keeps no state.
    return type(exc).__name__ == "StoreFull" or getattr(exc, "errno", None) in (27, 28, 122)
def _uri(req):
    """The request's URI: its canonical form (a tuple, see agent.uri), or text to parse."""
    uri = req.get(P.K_URI)
    if type(uri) is not tuple and (not isinstance(uri, str) or not uri):
        raise DMError(P.S_BAD_REQUEST, "uri missing or not text")
    return uri


def _opt_text(req, key):
    value = req.get(key)
    if value is None or isinstance(value, str):
        return value
    raise DMError(P.S_BAD_REQUEST, "field %d must be text" % key)

