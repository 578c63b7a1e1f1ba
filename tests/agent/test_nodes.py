"""Node storage rules (agent.nodes): children behave as a sorted map whatever their number,
no list or bytearray in it grows past its bound, and rollback restores exactly what was.
Plain functions with a fixed pseudo-random sequence: they run on the device runtime too."""

from agent import nodes as N


def _rng(seed):
    state = [seed]

    def rand(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] % n

    return rand


def _name(rand):
    pool = "abcXYZ019_%/\u00e9\u4e2d"
    return "".join([pool[rand(len(pool))] for _ in range(1 + rand(6))])


def _bounded(node):
    for group in node[N.VALUE]:
        assert 0 < len(group) <= N.GROUP
        for blob, vals in group:
            assert 0 < len(vals) <= N.CHUNK
            assert len(blob) <= N.CHUNK_BYTES or len(vals) == 1


def _same(node, model):
    """node's children are model's, in order (checked without building a sorted copy)."""
    last = None
    count = 0
    for name, entry in N.items(node):
        assert last is None or last < name
        assert model[name] == entry
        last = name
        count += 1
    assert count == len(model) == N.child_count(node)


def test_rule_children_are_a_sorted_map_with_bounded_blocks():
    rand = _rng(7)
    node = N.new_interior()
    model = {}
    for step in range(160):
        name = _name(rand) if rand(3) else "n%04d" % rand(90)
        if name in model and rand(2):
            assert N.pop_child(None, node, name) == model.pop(name)
        else:
            N.set_child(None, node, name, step)
            model[name] = step
        assert N.child(node, name) == model.get(name, N.MISSING)
    _same(node, model)
    _bounded(node)
    for name in model:
        assert N.child(node, name) == model[name]
    assert N.child(node, "not-there") is N.MISSING


def test_rule_items_after_a_name_resume_in_order_whether_or_not_it_exists():
    node = N.new_interior()
    names = ["k%03d" % i for i in range(0, 600, 3)]
    for name in names:
        N.set_child(None, node, name, name)
    for after in ("k000", "k001", "k299", "k597", "k598", "a", "z"):
        want = [n for n in names if n > after]
        assert [n for n, _ in N.items(node, after)] == want


def test_rule_rollback_restores_the_children_exactly():
    rand = _rng(11)
    node = N.new_interior()
    model = {}
    for i in range(200):
        N.set_child(None, node, "b%03d" % i, i)
        model["b%03d" % i] = i
    for _ in range(20):
        undo = []
        for step in range(40):
            name = "b%03d" % rand(260)
            if N.child(node, name) is not N.MISSING and rand(2):
                N.pop_child(undo, node, name)
            else:
                N.set_child(undo, node, name, -step)
        N.rollback(undo)
        _same(node, model)
        _bounded(node)


def test_rule_a_restore_appends_in_order_and_splits_on_later_inserts():
    from agent import journal

    node = N.new_interior()
    for i in range(300):
        journal.append_child(node, "r%04d" % i, i)
    _bounded(node)
    for i in range(300):
        N.set_child(None, node, "r%04da" % i, i)
    _bounded(node)
    got = N.items(node)
    for i in range(300):
        for name in ("r%04d" % i, "r%04da" % i):
            for n, v in got:
                assert n == name and v == i
                break



def test_rule_long_names_take_two_length_bytes_and_split_chunks_by_size():
    node = N.new_interior()
    names = []
    for i in range(40):
        name = ("%03d" % i) + ("\u00e9" * (60 + i))  # 123 to 162 UTF-8 bytes: a 2-byte head
        names.append(name)
        N.set_child(None, node, name, i)
    N.set_child(None, node, "a", -1)
    _bounded(node)
    assert [n for n, _ in N.items(node)] == sorted(names + ["a"])
    for i in range(40):
        assert N.child(node, names[i]) == i
    undo = []
    N.pop_child(undo, node, names[7])
    assert N.child(node, names[7]) is N.MISSING
    N.rollback(undo)
    assert N.child(node, names[7]) == 7
