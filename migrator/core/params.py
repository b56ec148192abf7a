"""Integers from query strings and forms: ASCII digits only, bounded to what the database holds.

Python's ``int()`` takes ``"²"``, ``"٣"``, ``" 1_000 "`` and numbers of any size, which then
fail deep in a query (an overflow, a 500). Every integer a request carries goes through
:func:`parse_int`, or :func:`int_arg` for ``request.args``.
"""

from __future__ import annotations

import re

from flask import request
from werkzeug.exceptions import BadRequest

INT64_MAX = 2**63 - 1
_INT = re.compile(r"[-+]?[0-9]{1,1000}")  # ASCII digits (int() accepts far more)


class BadNumber(BadRequest):
    """A query-string or form integer that is not one, or out of range (400)."""

    def __init__(self, name: str, lo: int, hi: int):
        super().__init__(f"{name} must be an integer from {lo} to {hi}.")
        self.name = name


def parse_int(raw: object, lo: int = 0, hi: int = INT64_MAX) -> int | None:
    """``raw`` as an integer in ``[lo, hi]``; ``None`` when it is not one (or out of range)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and _INT.fullmatch(raw.strip()):
        value = int(raw.strip())
    else:
        return None
    return value if lo <= value <= hi else None


def int_arg(name: str, default: int | None = None, *, lo: int = 0, hi: int = INT64_MAX,
            strict: bool = True) -> int | None:
    """The query-string integer ``name``; ``default`` when absent or empty.

    ``strict`` (the API): anything but an integer in ``[lo, hi]`` answers 400
    (:class:`BadNumber`). Otherwise (pages): garbage gives ``default`` and a number out of
    range is clamped into ``[lo, hi]``.
    """
    raw = request.args.get(name, "").strip()
    if raw == "":
        return default
    if not _INT.fullmatch(raw):
        if strict:
            raise BadNumber(name, lo, hi)
        return default
    value = int(raw)
    if lo <= value <= hi:
        return value
    if strict:
        raise BadNumber(name, lo, hi)
    return min(max(value, lo), hi)
