"""Text the command line prints about many cases at once."""

from __future__ import annotations

from collections.abc import Sequence

#: how many case ids a one-line message names before it only counts the rest
NAMED_CASES = 10


def some_names(case_ids: Sequence[str], more: str = "") -> str:
    """The first :data:`NAMED_CASES` of ``case_ids``, then ``"and N more"`` (followed by ``more``, e.g. where
    the whole list is) when there are others."""
    named = ", ".join(case_ids[:NAMED_CASES])
    rest = len(case_ids) - NAMED_CASES
    return named + (f" and {rest} more{more}" if rest > 0 else "")
