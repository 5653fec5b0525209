"""Small text helpers that the services' readers and messages share (each had its own copy)."""

from __future__ import annotations

from collections.abc import Sequence


def is_number(text: object) -> bool:
    """Whether ``text`` reads as a float (``"1e3"``, ``" 2 "``, ``"nan"`` do): how a CSV's first
    line is told from a header."""
    try:
        float(str(text))
    except ValueError:
        return False
    return True


def shortened(names: Sequence[str], shown: int) -> str:
    """The first ``shown`` names, comma-separated, and how many more: ``a, b, ... 3 more``."""
    head = ", ".join(names[:shown])
    return head + (f", ... {len(names) - shown} more" if len(names) > shown else "")
