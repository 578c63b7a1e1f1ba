"""Rule (protocol.md 4, get ?list=): a listing resumes after its cursor at any depth, with the
effective ACL of every node along the cursor's path, whether or not the cursor's node still
exists; the pages of a listing joined are the whole listing. Runs on CPython and under the
device runtime (agent.listing builds the walk's place from the cursor)."""

from agent.tree import Tree


def _tree():
    # ./P (A and B may Get) / a (own ACL: only A) / x y z, and b (inherits ./P's)
    t = Tree()
    t.put("./P", fmt="node", acl="Get=A+B")
    t.put("./P/a", fmt="node", acl="Get=A")
    for i, name in enumerate("xyz"):
        t.put("./P/a/" + name, i)
    t.put("./P/b", 4)
    return t


def test_rule_a_listing_resumes_after_its_cursor_with_the_acls_along_its_path():
    t = _tree()
    assert t.list("A", "./P?list=Struct", "./P/a/x") == (["./P/a/y", "./P/a/z", "./P/b"], None)
    # B may not Get below ./P/a: the cursor's path keeps a's own ACL
    assert t.list("B", "./P?list=Struct", "./P/a/x") == (["./P/b"], None)
    assert t.list("A", "./P?list=StructData", "./P/a") == ([["./P/a/x", 0, "int"], ["./P/a/y", 1, "int"],
                                                            ["./P/a/z", 2, "int"], ["./P/b", 4, "int"]], None)


def test_rule_a_cursor_whose_node_is_gone_resumes_where_it_would_be():
    t = _tree()
    assert t.list("A", "./P?list=Struct", "./P/a/xx") == (["./P/a/y", "./P/a/z", "./P/b"], None)
    assert t.list("A", "./P?list=Struct", "./P/aa/q") == (["./P/b"], None)  # its parent gone too
    assert t.list("A", "./P/b?list=Struct", "./P/b") == ([], None)  # a leaf: nothing after it


def test_rule_the_pages_of_a_listing_joined_are_the_whole_listing():
    t = _tree()
    whole = t.list("A", "./P?list=Struct")[0]
    assert whole == ["./P", "./P/a", "./P/a/x", "./P/a/y", "./P/a/z", "./P/b"]
    got, cursor = [], None
    for _ in range(len(whole)):  # a page holds one entry at least
        page, cursor = t.list("A", "./P?list=Struct", cursor, 2)
        got += page
        if cursor is None:
            break
    assert got == whole and cursor is None
