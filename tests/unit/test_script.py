"""Multi-speaker scripts: parsing, joining with pauses, segment times."""

from __future__ import annotations

import numpy as np
import pytest

from f5serve.engine.pipeline import Segment
from f5serve.engine.script import Line, Take, check_script_voices, join_takes, parse_script
from f5serve.errors import InvalidInput, InvalidText


def test_lines_follow_their_tags() -> None:
    lines = parse_script("Once upon a time. [alice] Hello! [Old Bob] Hi.  [alice] Bye.")
    assert lines == [
        Line(None, "Once upon a time."),
        Line("alice", "Hello!"),
        Line("Old Bob", "Hi."),
        Line("alice", "Bye."),
    ]


def test_lines_with_nothing_to_say_are_dropped_and_a_silent_script_is_refused() -> None:
    assert parse_script("[a] ... [b] Yes.") == [Line("b", "Yes.")]
    with pytest.raises(InvalidText):
        parse_script("[a] [b] !")


def test_unknown_speakers_are_named_before_any_work() -> None:
    with pytest.raises(InvalidInput, match="bob"):
        check_script_voices("[alice] Hi. [bob] Yo.", {"alice": object()})
    with pytest.raises(InvalidInput, match="before the first tag"):
        check_script_voices("Hello. [alice] Hi.", {"alice": object()})


def test_takes_are_joined_with_the_pause_and_segments_move_along() -> None:
    sr = 100
    first = Take(np.ones(150, np.float32), [Segment("a", 0.0, 1.0), Segment("b", 1.0, 1.5)])
    second = Take(np.ones(50, np.float32), [Segment("c", 0.0, 0.5)])
    joined = join_takes([first, second], 0.25, sr)
    assert len(joined.audio) == 150 + 25 + 50
    assert not joined.audio[150:175].any()
    assert joined.segments == [
        Segment("a", 0.0, 1.0),
        Segment("b", 1.0, 1.5),
        Segment("c", 1.75, 2.25),
    ]
