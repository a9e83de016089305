"""Schemathesis hooks of ``test_schemathesis.py`` (loaded by the CLI through SCHEMATHESIS_HOOKS).

One hook, for time only: generated bodies may ask for up to 128 flow steps, 60 s of audio per
chunk or a quarter of the normal speed, each of them valid, and each such synthesis costs the
tiny model minutes of CPU on a busy machine. Before a request is sent, a value that is in range
but costly is lowered to a cheap value that is still in range (so the case stays valid and still
reaches the engine); out-of-range values are left alone, so the validation of every option is
still tested. Text length is bounded by the server's own limits (``max_text_chars``), not here.
"""

from __future__ import annotations

from typing import Any

import schemathesis

# option: (the cheap value, the range in which a value is valid)
CHEAPER: dict[str, tuple[float, tuple[float, float]]] = {
    "nfe_steps": (4, (5, 128)),
    "fix_duration": (4.0, (4.0, 60.0)),
    "speed": (1.0, (0.25, 1.0)),
}


def cheaper(body: dict[str, Any]) -> None:
    for name, (cheap, (low, high)) in CHEAPER.items():
        value = body.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high:
            body[name] = cheap


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if isinstance(case.body, dict):
        cheaper(case.body)
