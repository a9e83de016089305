"""Fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch._dynamo.utils import counters


@pytest.fixture
def fresh_dynamo() -> Iterator[None]:
    """Dynamo without compiled graphs or counters from earlier tests (and none left after)."""
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


@pytest.fixture
def dynamo_only(fresh_dynamo: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``torch.compile`` traces and guards as usual, but runs the graphs eagerly (no code
    generation: the tests of which graphs are made stay fast)."""
    compile_fn = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, mode: compile_fn(fn, backend="eager"))
