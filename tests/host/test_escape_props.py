"""The console's escape sequence (agent.escape.ESCAPE) against what a peer sending frames
can put on the line: no run of valid frames, with any number of extra delimiters, holds it."""

from hypothesis import given, settings
from hypothesis import strategies as st

from dmagent.agent.frame import FrameDecoder
from dmagent.agent.escape import ESCAPE, Escape
from dmagent.host_tools.client import wire

frames = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=600), st.integers(0, 3)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(frames)
def test_rule_no_run_of_frames_holds_the_escape_sequence(items):
    stream = b"".join(b"\x00" * extra + wire.encode_frame(kind, body) for kind, body, extra in items)
    assert ESCAPE not in stream
    esc = Escape()
    assert not esc.feed(stream, len(stream))


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_rule_the_sequence_is_found_in_any_garbage_and_is_no_frame_itself(before, after):
    stream = before + ESCAPE + after
    assert Escape().feed(stream, len(stream))
    dec = FrameDecoder()
    assert list(dec.feed(ESCAPE)) == [] and dec.bad_cobs == 1  # the agent drops it as a bad frame
