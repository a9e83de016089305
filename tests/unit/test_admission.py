"""Admission: stream openers first, then least padding, arrival order otherwise; every way of
passing a waiting chunk is bounded."""

from __future__ import annotations

from collections import deque
from typing import Any, cast

import torch

from f5serve.engine.batching import FlowItem
from f5serve.engine.scheduler import (
    ADMIT_WINDOW,
    MAX_OPENERS_AHEAD,
    MAX_OVERTAKES,
    _Chunk,
    next_admission,
    take,
)

BUDGET = 1 << 20


def item(frames: int) -> FlowItem:
    """A guided chunk of ``frames`` frames (admission looks at its size only)."""
    zeros = torch.zeros(frames, 1)
    return FlowItem(zeros, 0, torch.zeros(1), zeros.clone(), torch.zeros(3), cfg_strength=2.0)


def chunk(
    frames: int, request: object | None = None, index: int = 0, *, opener: bool = False
) -> _Chunk:
    return _Chunk(cast(Any, request or object()), index, item(frames), opener=opener)


def opener(frames: int) -> _Chunk:
    """The first chunk of a streamed request."""
    return chunk(frames, opener=True)


def admit_all(
    active: list[FlowItem], waiting: deque[_Chunk], budget: int, hold_others: bool = False
) -> list[_Chunk]:
    """The chunks a scheduler admits, in order, until none may join."""
    admitted = []
    while (index := next_admission(active, waiting, budget, hold_others)) is not None:
        admitted.append(take(waiting, index))
        active.append(admitted[-1].item)
    return admitted


def test_equal_lengths_keep_arrival_order() -> None:
    waiting = deque(chunk(100) for _ in range(12))
    order = list(waiting)
    assert admit_all([item(100)], waiting, BUDGET) == order
    assert all(c.overtaken == 0 for c in order)


def test_an_empty_batch_takes_the_first_and_the_closest_length_joins_next() -> None:
    waiting = deque([chunk(400), chunk(130), chunk(90), chunk(100)])
    assert next_admission([], waiting, BUDGET) == 0
    assert next_admission([item(100)], waiting, BUDGET) == 3  # adds no padding


def test_a_chunk_is_overtaken_at_most_max_overtakes_times() -> None:
    long = chunk(400)
    waiting = deque([long, *(chunk(100) for _ in range(3 * MAX_OVERTAKES))])
    admitted = admit_all([item(100)], waiting, BUDGET)
    assert admitted.index(long) == MAX_OVERTAKES
    assert long.overtaken == MAX_OVERTAKES


def test_an_overtaken_chunk_that_does_not_fit_stops_admission() -> None:
    long = chunk(400)
    long.overtaken = MAX_OVERTAKES
    waiting = deque([long, chunk(100)])
    budget = 2 * 100 + 2 * 100  # room for the short one only
    assert next_admission([item(100)], waiting, budget) is None


def test_a_requests_chunks_keep_their_order() -> None:
    request = object()
    first, second = chunk(400, request, 0), chunk(100, request, 1)
    assert next_admission([item(100)], deque([first, second]), BUDGET) == 0


def test_nothing_that_exceeds_the_budget_joins() -> None:
    waiting = deque([chunk(300), chunk(200)])
    assert next_admission([item(100)], waiting, 2 * 100 + 2 * 150) is None
    assert next_admission([item(100)], deque(), BUDGET) is None


def test_stream_openers_join_before_earlier_chunks_that_are_not_openers() -> None:
    playing = object()  # a stream whose first chunk already runs: its second chunk waits
    later, whole = chunk(100, playing, 1), chunk(100)  # ... and a whole-file request's chunk
    a, b = opener(100), opener(100)
    waiting = deque([later, whole, a, b])
    assert next_admission([], waiting, BUDGET) == 2  # even into an empty batch
    assert admit_all([item(100)], waiting, BUDGET) == [a, b, later, whole]
    assert (later.openers_ahead, later.overtaken) == (2, 0)  # passing by openers is counted apart


def test_openers_are_found_past_the_admission_window() -> None:
    waiting = deque([*(chunk(100) for _ in range(3 * ADMIT_WINDOW)), opener(100)])
    assert next_admission([item(100)], waiting, BUDGET) == 3 * ADMIT_WINDOW


def test_openers_that_do_not_fit_wait_and_the_others_go_on() -> None:
    waiting = deque([chunk(100), opener(400)])
    assert next_admission([item(100)], waiting, 2 * 100 + 2 * 100) == 0


def test_openers_beyond_the_waves_room_wait_and_the_others_go_on() -> None:
    waiting = deque([chunk(100), opener(300), opener(100)])
    assert next_admission([item(100)], waiting, BUDGET, opener_room=2 * 100) == 2
    assert next_admission([item(100)], waiting, BUDGET, opener_room=2 * 100 - 1) == 0
    assert next_admission([item(100)], waiting, BUDGET, opener_room=None) == 2


def test_among_openers_the_least_padding_joins_first() -> None:
    waiting = deque([chunk(100), opener(400), opener(100)])
    assert next_admission([item(100)], waiting, BUDGET) == 2


def test_a_chunk_is_passed_by_at_most_max_openers_ahead_openers() -> None:
    later = chunk(100, object(), 1)
    waiting = deque([later, *(opener(100) for _ in range(2 * MAX_OPENERS_AHEAD))])
    admitted = admit_all([item(100)], waiting, BUDGET)
    assert admitted.index(later) == MAX_OPENERS_AHEAD
    assert later.openers_ahead == MAX_OPENERS_AHEAD


def test_an_opener_passed_for_padding_max_overtakes_times_stops_the_other_openers() -> None:
    long = opener(400)
    waiting = deque([long, *(opener(100) for _ in range(3 * MAX_OVERTAKES))])
    admitted = admit_all([item(100)], waiting, BUDGET)
    assert admitted.index(long) == MAX_OVERTAKES


def test_a_chunk_passed_for_padding_max_overtakes_times_still_lets_openers_pass() -> None:
    stuck = chunk(400)
    stuck.overtaken = MAX_OVERTAKES
    waiting = deque([stuck, chunk(100), opener(100)])
    assert next_admission([item(100)], waiting, BUDGET) == 2


def test_held_back_chunks_wait_for_openers_only_in_a_running_batch_and_up_to_their_bound() -> None:
    later, whole, a = chunk(100, object(), 1), chunk(100), opener(400)
    waiting = deque([later, whole, a])
    assert admit_all([item(100)], waiting, BUDGET, hold_others=True) == [a]
    assert list(waiting) == [later, whole]
    assert next_admission([], waiting, BUDGET, hold_others=True) == 0  # an empty batch takes it
    whole.openers_ahead = MAX_OPENERS_AHEAD  # passed by as many openers as may pass it
    assert next_admission([item(100)], waiting, BUDGET, hold_others=True) == 1
