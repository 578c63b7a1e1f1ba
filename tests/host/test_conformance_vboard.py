"""The conformance suite against the virtual board: the agent flashed (bundle, config, keys)
onto MicroPython's WebAssembly build behind a pty, checked over its serial console.

Minutes, not seconds: `make conformance` runs it (DMAGENT_CONFORMANCE_VBOARD=1); make test
skips it.
"""

import os

import pytest

from dmagent.host_tools import conformance
from tests.host import conformance_setup as S

pytestmark = pytest.mark.skipif(not os.environ.get("DMAGENT_CONFORMANCE_VBOARD"),
                                reason="slow: make conformance (DMAGENT_CONFORMANCE_VBOARD=1)")


def test_suite_passes_on_the_virtual_board_with_keys(tmp_path):
    from dmagent.firmware_build.bundle import build
    from dmagent.host_tools.flash.deploy import flash
    from dmagent.host_tools.vboard.board import VirtualBoard, ensure_node_runtime

    ensure_node_runtime(log=lambda line: None)
    bundle = build("virtual", tmp_path / "bundle")
    config = S.config()
    config["device"].pop("devid")
    keys = S.key_files(tmp_path / "keys")
    with VirtualBoard(tmp_path / "board") as board:
        assert flash(board.port, bundle, config=config, keys=keys).ok
        report = conformance.run("serial://%s" % board.port, keys=S.keys(), confidential=["./DMAcc"],
                                 timeout=5.0, ddf=S.board_ddf(tmp_path))
    failed = {r.name for r in report.failed}
    assert report.error is None, report.error
    assert failed <= set(S.KNOWN_GAPS) | set(S.DEVICE_RUNTIME_GAPS), [(r.name, r.message) for r in report.failed
                                                                     if r.name not in S.KNOWN_GAPS]
    print("virtual board: %d checks in %.1fs, %d failed" % (len(report.results), report.seconds, len(failed)))
