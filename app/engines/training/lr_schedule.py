"""Polynomial learning-rate decay with warm restarts, as one epoch-level scheduler a bundle config can build.

``poly_with_restarts(optimizer, max_epochs, restarts=[[60, 0.25]])`` runs nnU-Net's polynomial decay
(``lr = base * (1 - e / E) ** 0.9``) over epochs ``[0, 60)``, then restarts at ``0.25 * base`` and decays again
to zero at ``max_epochs`` (SGDR, Loshchilov & Hutter 2017, with polynomial instead of cosine cycles). Without
restarts it equals :class:`torch.optim.lr_scheduler.PolynomialLR` with ``total_iters=max_epochs``, so a run
with a restart repeats a single-cycle run exactly up to the restart epoch.

Restarts at or beyond ``max_epochs`` are dropped, so a config overridden to a short run (``--max_epochs 1``
in tests, MONAI Label's epoch setting) still decays over the epochs it has.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["PolyRestartFactor", "poly_with_restarts"]


class PolyRestartFactor:
    """``epoch -> lr factor`` of polynomial cycles; a plain object so ``LambdaLR.state_dict`` saves it."""

    def __init__(self, max_epochs: int, restarts: Sequence[Sequence[float]] = (), power: float = 0.9) -> None:
        if max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
        starts, peaks = [0], [1.0]
        for epoch, factor in sorted((int(e), float(f)) for e, f in restarts):
            if not 0 < factor:
                raise ValueError(f"a restart's lr factor must be > 0, got {factor} at epoch {epoch}")
            if starts[-1] < epoch < max_epochs:
                starts.append(epoch)
                peaks.append(factor)
        self.starts = starts
        self.ends = starts[1:] + [max_epochs]
        self.peaks = peaks
        self.power = power

    def __call__(self, epoch: int) -> float:
        for start, end, peak in zip(self.starts, self.ends, self.peaks, strict=True):
            if epoch < end:
                return peak * (1.0 - (epoch - start) / (end - start)) ** self.power
        return 0.0


def poly_with_restarts(
    optimizer: torch.optim.Optimizer,
    max_epochs: int,
    restarts: Sequence[Sequence[float]] = (),
    power: float = 0.9,
) -> LambdaLR:
    """Epoch-level scheduler: polynomial decay to 0 at ``max_epochs``, restarted at ``[epoch, lr factor]`` pairs.

    Args:
        optimizer: the optimizer whose initial ``lr`` is the base rate.
        max_epochs: total epochs of the run; the last cycle reaches 0 there.
        restarts: ``[[epoch, factor], ...]``: from ``epoch`` (0-based count of finished epochs) the rate jumps to
            ``factor * base`` and decays again; entries outside ``(0, max_epochs)`` are ignored.
        power: exponent of each polynomial decay (0.9 as in nnU-Net).
    """
    return LambdaLR(optimizer, PolyRestartFactor(max_epochs, restarts, power))
