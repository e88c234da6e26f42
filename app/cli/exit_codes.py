"""The exit codes of ``unetseg`` commands, one table per command: shown in each ``--help`` epilog, in the README,
and printed with their meaning whenever a command ends with a non-zero code.

Every command shares :data:`COMMON` (the error classes of :mod:`app.errors` and Ctrl-C); a command's module
defines ``EXIT_CODES`` from :func:`codes` with what 1 (and any other code) means for it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

#: the codes every command may end with: app.errors' exit codes, and 130 for Ctrl-C / SIGTERM
COMMON: Mapping[int, str] = {
    0: "success",
    2: "input error: an input, reference or option to fix (the message names it)",
    3: "bundle error: the bundle folder is missing files, keys or weights (the message names it)",
    4: "output error: the output folder or file cannot be written",
    130: "interrupted (Ctrl-C or SIGTERM); finished work is kept",
}


def codes(specific: Mapping[int, str]) -> dict[int, str]:
    """:data:`COMMON` with a command's own meanings added or replacing the shared ones, sorted by code."""
    merged = {**COMMON, **specific}
    return dict(sorted(merged.items()))


def epilog(table: Mapping[int, str]) -> str:
    """The ``--help`` epilog listing ``table`` (use with ``argparse.RawDescriptionHelpFormatter``)."""
    lines = [
        textwrap.fill(text, width=100, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
        for code, text in table.items()
    ]
    return "exit codes:\n" + "\n".join(lines)


def meaning(table: Mapping[int, str], code: int) -> str:
    """What ``code`` means in ``table`` (a code the table lacks: ``"unexpected exit code"``)."""
    return table.get(code, "unexpected exit code")
