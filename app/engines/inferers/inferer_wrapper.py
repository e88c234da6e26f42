"""Inferers that drive another inferer (test-time augmentation, window skipping), and finding the one inside.

Contract: an :class:`InfererWrapper` keeps the inferer it drives as ``self.inferer``; the wrapped inferer's
settings (``roi_size``, ``sw_batch_size``, ``overlap``...) stay readable through the wrapper, and
:func:`find_inferer` walks a chain of wrappers down to the inferer of a given type (the app sets
``sw_batch_size`` on the sliding window itself, whatever wraps it); :func:`wrap_found` puts a wrapper directly
around that inferer inside the chain (window progress counts at the sliding window itself).
"""

from __future__ import annotations

from typing import Any, TypeVar

from monai.inferers import Inferer

T = TypeVar("T")


class InfererWrapper(Inferer):
    """Base of inferers that drive ``inferer``; subclasses implement ``__call__``."""

    def __init__(self, inferer: Inferer) -> None:
        super().__init__()
        self.inferer = inferer

    def __getattr__(self, name: str) -> Any:
        # only called for names the wrapper lacks: read them from the wrapped inferer
        if name == "inferer":
            raise AttributeError(name)
        return getattr(self.inferer, name)


def find_inferer(inferer: Any, kind: type[T]) -> T | None:
    """``inferer`` itself when it is a ``kind``, else the first ``kind`` down its chain of wrappers, else ``None``."""
    while not isinstance(inferer, kind):
        if not isinstance(inferer, InfererWrapper):
            return None
        inferer = inferer.inferer
    return inferer


def wrap_found(inferer: Any, kind: type, wrap: Any) -> Any:
    """The chain ``inferer`` with ``wrap(found)`` put directly around its first ``kind`` (found as
    :func:`find_inferer` finds it); the chain unchanged when it holds none. Returns the chain's head."""
    if isinstance(inferer, kind):
        return wrap(inferer)
    parent = inferer
    while isinstance(parent, InfererWrapper):
        if isinstance(parent.inferer, kind):
            parent.inferer = wrap(parent.inferer)
            break
        parent = parent.inferer
    return inferer
