"""Checks of the strings a client sends before they reach the database or the file system.

A NUL character cannot be stored in PostgreSQL text or used in a path, and a lone surrogate
(``"\\ud800"``, valid in JSON) cannot be encoded as UTF-8 at all: both are refused up front.
"""

from __future__ import annotations

from f5serve.errors import InvalidInput

MAX_INT64 = 2**63 - 1  # the largest integer a database column holds


def storable(value: str) -> bool:
    """Whether ``value`` can be stored and looked up: no NUL, encodable as UTF-8."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_string(value: str | None, field: str, max_length: int | None = None) -> None:
    """Refuse (:class:`InvalidInput`) a ``field`` that is not :func:`storable` or is longer than
    ``max_length`` characters. The message never repeats the value (it may not be encodable)."""
    if value is None:
        return
    if not storable(value):
        raise InvalidInput(
            f"{field} must be valid Unicode text without NUL characters",
            details={"field": field},
        )
    if max_length is not None and len(value) > max_length:
        raise InvalidInput(
            f"{field} is {len(value)} characters long (at most {max_length})",
            details={"field": field, "max_chars": max_length},
        )
