"""Errors a user can cause, each carrying the path it is about.

The CLI maps them to exit codes; batch runners catch :class:`UnetsegError` per case, record the message and
go on. Programming errors (bugs) are *not* subclasses of these and are never swallowed.
"""

from __future__ import annotations

from pathlib import Path


class UnetsegError(Exception):
    """Base class: something about an input, a bundle or an output location is not usable.

    Args:
        path: the file or folder the problem is about (``None`` when there is no single one).
        reason: what is wrong and, where possible, how to fix it.
    """

    exit_code = 1

    def __init__(self, path: str | Path | None, reason: str):
        self.path = Path(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)


class InputError(UnetsegError):
    """An input image, series or reference that cannot be read into a correct volume."""

    exit_code = 2


class BundleError(UnetsegError):
    """A bundle folder that is missing files, keys or weights, or whose metadata is inconsistent."""

    exit_code = 3


class OutputError(UnetsegError):
    """An output location that cannot be written."""

    exit_code = 4
