"""The build's fold of agent/proto's constants (firmware_build/fold.py): what it folds, what it
must leave alone, that a folded agent answers byte for byte as the source does, and that a
booted board has no agent.proto in its heap.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from dmagent.firmware_build import fold
from dmagent.firmware_build.fold import FoldError, fold_imports, fold_module, proto_constants
from dmagent.host_tools.paths import AGENT_DIR
from dmagent.host_tools.runtime import micropython as mpy_runtime
from tests.host.agents import ROOT

PROTO = textwrap.dedent('''
    try:
        from micropython import const
    except ImportError:
        def const(x):
            return x
    S_OK = const(200)
    NEG = const(-1)
    NAME = "Add"
    LABEL = b"dmagent hs2"
    BOTH = (NAME, "Get")
    TWICE = 1
    TWICE = 2
    TABLE = {S_OK: "OK"}
    GROWN = 3
    GROWN += 1
    import sys
    if sys.implementation.name != "micropython":
        HOST_ONLY = 5
''')


def test_only_plain_constants_bound_once_are_folded():
    found = proto_constants(PROTO)
    assert found == {"S_OK": 200, "NEG": -1, "NAME": "Add", "LABEL": b"dmagent hs2", "BOTH": ("Add", "Get")}


def test_the_agents_proto_gives_every_name_the_agent_uses():
    constants = proto_constants((AGENT_DIR / "proto.py").read_text())
    assert constants["S_OK"] == 200 and constants["COMMANDS"] == ("Add", "Delete", "Exec", "Get", "Replace")
    assert "OP_NAMES" not in constants and "STATUS_TEXT" not in constants and "const" not in constants


def _fold(body, package="agent", never=()):
    return fold_module(textwrap.dedent(body), proto_constants(PROTO), package, never)


def test_a_folded_module_reads_literals_and_no_longer_imports_proto():
    out = _fold('''
        from . import errors, proto as P
        from . import uri as U

        def status(ok):
            return P.S_OK if ok else P.NEG.bit_length(), P.BOTH, P.LABEL
    ''')
    assert out.count == 4 and out.kept is None
    assert "from . import errors\n" in out.text and "proto" not in out.text and "P." not in out.text
    assert "200 if ok else (-1).bit_length(), ('Add', 'Get'), b'dmagent hs2'" in out.text
    # Rule: lines keep their numbers (a board's traceback names the source's line).
    assert out.text.count("\n") == 6 and out.text.splitlines()[4].startswith("def status")


def test_an_attribute_of_another_object_named_P_is_not_proto():
    out = _fold('''
        from . import proto as P

        def f(obj):
            return obj.P.S_OK, P.S_OK
    ''')
    assert "obj.P.S_OK, 200" in out.text and out.count == 1 and "import proto" not in out.text


def test_a_name_not_a_plain_constant_stays_and_so_does_the_import():
    out = _fold('''
        from . import proto as P

        def f():
            return P.TABLE, P.TWICE, P.HOST_ONLY, P.S_OK
    ''')
    assert "P.TABLE, P.TWICE, P.HOST_ONLY, 200" in out.text
    assert "from . import proto as P" in out.text and "3 use(s)" in out.kept


def _package(tmp_path, **modules):
    """An agent package under tmp_path with PROTO as its proto and each module's text."""
    package = tmp_path / "src" / "agent"
    package.mkdir(parents=True)
    (package / "proto.py").write_text(PROTO)
    for name, text in modules.items():
        (package / (name + ".py")).write_text(text)
    return package


def test_a_constant_a_module_assigns_is_folded_nowhere(tmp_path):
    package = _package(tmp_path, patch="from . import proto as P\nP.S_OK = 201\n",
                       user="from . import proto as P\n\ndef ok():\n    return P.S_OK, P.NAME\n")
    report = fold.fold_tree(package, tmp_path / "out")
    # P.S_OK is left (patch.py changes it at run time), so user.py keeps its import
    user = (tmp_path / "out" / "agent" / "user.py").read_text()
    assert user == "from . import proto as P\n\ndef ok():\n    return P.S_OK, 'Add'\n", user
    assert report["agent/user.py"].count == 1 and report["agent/user.py"].kept
    assert "P.S_OK = 201" in (tmp_path / "out" / "agent" / "patch.py").read_text()
    assert (tmp_path / "out" / "agent" / "proto.py").read_text() == PROTO


def test_a_module_whose_P_another_module_reads_keeps_its_import(tmp_path):
    """dmvboard's `dmboard.P.S_OK` (or `from dmboard import P`) needs dmboard's P at run time."""
    package = tmp_path / "src" / "agent"
    package.mkdir(parents=True)
    (package / "proto.py").write_text(PROTO)
    for name, body in (("board", "from agent import proto as P\nx = P.S_OK\n"),
                       ("user", "import board as B\ny = B.P.S_OK\n"),
                       ("other", "from agent import proto as P\nz = P.S_OK\n")):
        (tmp_path / (name + ".py")).write_text(body)
    report = fold.fold_tree(package, tmp_path / "out", [tmp_path / n for n in ("board.py", "user.py", "other.py")])
    assert (tmp_path / "out" / "board.py").read_text() == "from agent import proto as P\nx = 200\n"
    assert "another module" in report["board.py"].kept
    assert (tmp_path / "out" / "other.py").read_text() == "pass\nz = 200\n"
    (tmp_path / "user.py").write_text("from board import P\n")
    fold.fold_tree(package, tmp_path / "out2", [tmp_path / n for n in ("board.py", "user.py")])
    assert (tmp_path / "out2" / "board.py").read_text().startswith("from agent import proto as P\n")


def test_a_module_that_binds_P_again_is_left_as_it_is():
    for body in ('''
        from . import proto as P

        def f(P):
            return P.S_OK
    ''', '''
        from . import proto as P
        for P in range(2):
            pass
        x = P.S_OK
    '''):
        out = _fold(body)
        assert out.text == textwrap.dedent(body) and out.count == 0 and "bound again" in out.kept


def test_a_board_module_and_a_subpackage_import_proto_their_own_way():
    board = _fold("from agent import proto as P\nx = P.S_OK\n", package="")
    sub = _fold("from .. import proto as P\nx = P.S_OK\n", package="agent.mo")
    assert board.text == sub.text == "pass\nx = 200\n"
    other = _fold("from other import proto as P\nx = P.S_OK\n", package="")  # not the agent's proto
    assert other.count == 0 and other.text.endswith("x = P.S_OK\n")


def test_a_fold_that_wrote_something_else_is_a_build_error(monkeypatch):
    # The check behind every fold: the text must parse to the source's tree with literals in.
    monkeypatch.setattr(fold, "_source_literal", lambda value, parent, node: repr(value) + " + 1")
    with pytest.raises(FoldError, match="changed more than"):
        _fold("from . import proto as P\nx = P.S_OK\n")


def test_the_prepared_tree_is_keyed_by_the_fold_and_the_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("DMAGENT_CACHE", str(tmp_path / "cache"))
    package = tmp_path / "src" / "agent"
    package.mkdir(parents=True)
    (package / "proto.py").write_text(PROTO)
    (package / "user.py").write_text("from . import proto as P\nx = P.S_OK\n")
    first = fold.prepare(package_dir=package)
    assert fold.prepare(package_dir=package) == first
    assert (first / "agent" / "user.py").read_text() == "pass\nx = 200\n"
    (package / "proto.py").write_text(PROTO.replace("const(200)", "const(201)"))
    second = fold.prepare(package_dir=package)
    assert second != first and (second / "agent" / "user.py").read_text() == "pass\nx = 201\n"
    changed = tmp_path / "fold.py"  # a change to the fold itself is a new tree too
    changed.write_text(fold.Path(fold.__file__).read_text() + "\n# changed\n")
    monkeypatch.setattr(fold, "__file__", str(changed))
    assert fold.prepare(package_dir=package) not in (first, second)
    board = tmp_path / "board.py"  # a board's own module, beside the package
    board.write_text("from agent import proto as P\nx = P.S_OK\n")
    assert (fold.prepare([board], package_dir=package) / "board.py").read_text() == "pass\nx = 201\n"


# --- constants agent modules import from each other ------------------------------------------
NODES = textwrap.dedent('''
    VALUE = const(0)
    ACL = const(2)
    FILE = "snapshot.bin"
    MISSING = object()

    def fields(node):
        return node
''')


def _fold_imports(body, package="agent", never=None, reached=(), module="user"):
    exports = {"agent.nodes": proto_constants(NODES), "agent.proto": proto_constants(PROTO)}
    return fold_imports(textwrap.dedent(body), exports, package, never, reached, module)


def test_a_constant_imported_by_name_is_folded_and_leaves_the_import():
    out = _fold_imports('''
        from .nodes import ACL, MISSING, fields
        from .nodes import FILE as NAME

        def f(node):
            return fields(node)[ACL], NAME, node is MISSING, ACL.bit_length()
    ''')
    assert out.count == 3
    # Rule: a constant's import goes once every use is its literal; the rest of the import stays.
    assert out.text.startswith("\nfrom .nodes import MISSING, fields\npass\n"), out.text
    assert "return fields(node)[(2)], 'snapshot.bin', node is MISSING, (2).bit_length()" in out.text


def test_a_module_alias_attribute_is_folded_and_the_alias_stays_while_used():
    out = _fold_imports('''
        from . import nodes as N

        def f(node):
            return N.fields(node)[N.VALUE], N.MISSING, N.ACL
    ''')
    assert out.count == 2
    assert "from . import nodes as N\n" in out.text and "N.fields(node)[(0)], N.MISSING, 2" in out.text
    # in agent.mo, `from . import nodes` would be agent.mo.nodes: only `..` is agent.nodes
    sub = _fold_imports("from . import nodes as N\nfrom .. import nodes\nx = N.ACL, nodes.ACL\n", package="agent.mo")
    assert sub.text.endswith("x = N.ACL, 2\n") and sub.count == 1


def test_a_name_imported_and_also_assigned_is_left_alone():
    for body in ('''
        from .nodes import ACL

        def f():
            global ACL
            ACL = 3
            return ACL
    ''', '''
        from .nodes import ACL

        def f(ACL=ACL):
            return ACL
    ''', '''
        from .nodes import ACL
        from .other import ACL
        x = ACL
    '''):
        out = _fold_imports(body)
        assert out.text == textwrap.dedent(body) and out.count == 0


def test_a_name_that_is_no_plain_constant_or_assigned_elsewhere_is_left():
    out = _fold_imports('''
        from .nodes import ACL, MISSING, fields
        from . import nodes as N

        def f(node):
            N.VALUE = 1
            return fields(node)[ACL], MISSING, f"{ACL}", N.VALUE
    ''', never={"agent.nodes": {"VALUE"}})
    # ACL in an f-string stays a name, so its import stays too; VALUE is assigned: no constant
    assert out.count == 1 and "from .nodes import ACL, MISSING, fields\n" in out.text
    assert "fields(node)[(2)], MISSING, f\"{ACL}\", N.VALUE" in out.text


def test_an_imported_name_another_module_reads_through_this_one_stays():
    out = _fold_imports("from .nodes import ACL\nx = ACL\n", reached={("user", "ACL")})
    assert out.text == "from .nodes import ACL\nx = 2\n"


def test_the_tree_fold_takes_each_exporting_modules_own_constants(tmp_path):
    package = _package(tmp_path, nodes="from . import proto as P\nOK = P.S_OK\nVALUE = 0\n",
                       patch="from . import nodes\nnodes.VALUE = 1\n",
                       user="from .nodes import OK, VALUE\nx = OK, VALUE\n")
    report = fold.fold_tree(package, tmp_path / "out")
    # OK is proto's S_OK once proto is folded into nodes; VALUE is assigned by patch.py
    assert (tmp_path / "out" / "agent" / "user.py").read_text() == "from .nodes import VALUE\nx = 200, VALUE\n"
    assert report["agent/user.py"].count == 1


def test_an_import_fold_that_wrote_something_else_is_a_build_error(monkeypatch):
    monkeypatch.setattr(fold, "_import_text", lambda node, kept: "import os")
    with pytest.raises(FoldError, match="changed more than"):
        _fold_imports("from .nodes import ACL\nx = ACL\n")


# --- the agent, folded --------------------------------------------------------------------------
# A scripted session through the agent's own App (insecure, the demo config): every reply frame
# in hex. Run once on the source and once on the folded copy, both on CPython.
SESSION = textwrap.dedent('''
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from agent import cbor, frame  # on a board: agent/ is the top-level package
    from agent.app import App  # on a board: agent/ is the top-level package
    config = json.load(open(sys.argv[2]))
    app = App(config, None, True, lambda msg: None)
    link = app.new_link("test")
    requests = [
        {0: 1, 1: 1, 8: "ServerA"}, {0: 2, 1: 2}, {0: 3, 1: 3, 3: "./DevInfo"},
        {0: 4, 1: 4, 3: "./DevInfo/Ext", 5: "node"}, {0: 5, 1: 4, 3: "./DevInfo/Ext/X", 4: 7, 5: "int"},
        {0: 6, 1: 5, 3: "./DevInfo/Ext/X", 4: "no", 5: "int"}, {0: 7, 1: 3, 3: "./Nope"},
        {0: 8, 1: 99}, {0: 9, 1: 9, 3: "./DevInfo", 8: "ServerB", 9: "Delete"}, {0: 10, 1: 8, 3: "./DevInfo/Ext/X"},
        {0: 11, 1: 10, 14: [{1: 5, 3: "./DevInfo/Ext/X", 4: 8, 5: "int"}, {1: 6, 3: "./Nope"}]},
        {0: 12, 1: 3, 3: "./DevInfo/Ext?list=Struct"}, {0: 13, 1: 6, 3: "./DevInfo/Ext/X"}, b"garbage",
    ]
    for req in requests:
        body = req if isinstance(req, bytes) else cbor.dumps(req)
        for reply in link.receive(frame.encode_frame(1, body)):
            print(bytes(reply).hex())
''')


def test_the_folded_agent_answers_byte_for_byte_as_the_source(tmp_path):
    folded = fold.prepare()
    script = tmp_path / "session.py"
    script.write_text(SESSION)
    config = ROOT / "boards" / "unix" / "demo-config.json"
    runs = [subprocess.run([sys.executable, str(script), str(root), str(config)], capture_output=True,
                           text=True, cwd=str(tmp_path), timeout=60) for root in (ROOT, folded)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert len(runs[0].stdout.split()) >= 13 and runs[0].stdout == runs[1].stdout
    # and the copies it ran are folded: no module but proto itself still imports it
    importing = [p.relative_to(folded).as_posix() for p in folded.rglob("*.py") if "import proto" in p.read_text()]
    assert importing == [], importing
    # nor any constant of another agent module: folding the copies again finds nothing left
    exports = {fold._module_of(p.relative_to(folded).as_posix()): proto_constants(p.read_text())
               for p in folded.rglob("*.py")}
    left = {p.name: fold_imports(p.read_text(), exports, fold._package_of(p.relative_to(folded).as_posix())).count
            for p in (folded / "agent").rglob("*.py")}
    assert set(left.values()) == {0} and "from .nodes import ACL" not in (folded / "agent" / "journal.py").read_text()


BOOTED = textwrap.dedent('''
    import sys
    sys.argv[1:] = ["--tcp", "127.0.0.1:0", "--config", "boards/unix/demo-config.json", "--keys", KEYS]
    from agent import startup  # on a board: agent/ is the top-level package
    startup.reserve(1)
    import agent.app  # on a board: agent/ is the top-level package
    from agent import keys as keyfiles  # on a board: agent/ is the top-level package
    app = startup.make_app(startup.load_config("boards/unix/demo-config.json"), None,
                           keyfiles.load([KEYS]), None, False)
    print("agent.proto" in sys.modules, sorted(m for m in sys.modules if m.startswith("agent")))
''')


@pytest.mark.parametrize("runtime", mpy_runtime.RUNTIMES)
def test_a_booted_board_has_no_agent_proto(tmp_path, runtime):
    """Rule: once folded, nothing a keyed boot loads imports agent.proto (its module and
    qstrs cost a 110k heap ~5 KB as .mpy)."""
    keys = tmp_path / "ServerA.key"
    keys.write_text(json.dumps({"principal": "ServerA", "key": "11" * 16}))
    keys.chmod(0o600)
    script = tmp_path / "boot.py"
    script.write_text(BOOTED.replace("KEYS", repr(str(keys))))
    proc = mpy_runtime.run_file(script, heap="256k", runtime=runtime, cwd=str(ROOT), capture_output=True,
                                text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("False ") and "'agent.secure'" in proc.stdout, proc.stdout
