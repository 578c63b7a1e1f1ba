"""Rule: boot never holds the whole snapshot: the tree reads it from the store's file a few
bytes at a time and builds itself item by item (agent.journal, agent.recovery). Its own module
so that it runs in a fresh heap on the device runtime too."""


def _digest(tree):
    from hashlib import sha256

    h = sha256()
    tree.dump(lambda chunk: h.update(bytes(chunk)))
    return h.digest()


def test_rule_boot_reads_the_snapshot_an_item_at_a_time():
    # The snapshot is never whole in memory at boot: restore asks the store for a few bytes
    # at a time, straight from the file, and the tree it builds is the one that was dumped.
    import os

    from agent import journal
    from agent.store import Store
    from agent.tree import Tree

    d = "/tmp/dmagent-nodes-%d" % (os.urandom(1)[0] * 256 + os.urandom(1)[0])
    try:
        t = Tree()
        t.put("./S", fmt="node")
        for i in range(60):
            t.put("./S/L%d" % i, "v%d" % i)
        s = Store(d)
        s.load()
        s.compact(t.dump)
        s.close()
        want = _digest(t)
        t = s = None
        asked = []
        t2 = Tree()

        def restore(read):
            def spy(n):
                asked.append(n)
                return read(n)

            journal.restore(t2, spy)

        s = Store(d)
        s.load(restore, lambda payload: None)
        s.close()
        assert len(asked) > 120 and max(asked) < 64, (len(asked), max(asked))
        assert _digest(t2) == want
        assert t2.value("./S/L59") == "v59"
    finally:
        for name in os.listdir(d):
            os.remove(d + "/" + name)
        os.rmdir(d)
