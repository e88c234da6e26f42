"""An Ignite handler that keeps the postprocessed predictions of an evaluator run (in place of ``SaveImaged``).

Contract: attached after the bundle's postprocessing (MONAI registers postprocessing when the engine is built,
before any handler, so this runs after it). At every ``ITERATION_COMPLETED`` it takes the decollated output
(a list of dicts) and stores, per item, ``pred`` as a numpy array ``(C, *spatial)`` with the item's affine
(4x4 float64, RAS, from the MetaTensor) and source file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CapturedPrediction:
    """One postprocessed prediction: ``array`` ``(C, *spatial)``, ``affine`` voxel -> RAS mm, ``source`` file."""

    array: np.ndarray
    affine: np.ndarray | None
    source: str


class CapturePrediction:
    """Collect ``output[key]`` of every item after postprocessing; read them from :attr:`captured`.

    Args:
        key: the output key holding the prediction (``"pred"`` in MONAI bundles).
    """

    def __init__(self, key: str = "pred") -> None:
        self.key = key
        self.captured: list[CapturedPrediction] = []

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Any) -> None:
        output = engine.state.output
        items = output if isinstance(output, list) else [output]
        for item in items:
            if not isinstance(item, dict) or self.key not in item:
                continue
            pred = item[self.key]
            affine = getattr(pred, "affine", None)
            meta = getattr(pred, "meta", {}) or {}
            self.captured.append(
                CapturedPrediction(
                    array=_numpy(pred),
                    affine=_numpy(affine).astype(np.float64) if affine is not None else None,
                    source=str(meta.get("filename_or_obj", "")),
                )
            )


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        value = value.as_tensor() if hasattr(value, "as_tensor") else value
        return value.numpy()
    return np.asarray(value)
