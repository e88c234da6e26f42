"""The precision of a bundle's resampling: MONAI's float64 default -> float32, to halve its memory.

MONAI's ``Spacing``/``Spacingd`` resample in float64 by default (``dtype=np.float64``): the image is copied to
float64 and ``torch.nn.functional.affine_grid`` builds a float64 sampling grid of the whole output volume,
(D, H, W, 3) doubles plus a (D, H, W, 4) base grid. On a 512 x 512 x 40 CT resampled to 1 mm (500 x 500 x 79)
that transient is about 1.2 GB, the largest allocation of the whole case; ``Invertd`` builds such grids again
for the C-channel prediction on the way back, plus float64 copies of its input and output. In float32 both
halve and run faster.

The inverse follows without further changes: ``Invertd`` resamples in the dtype that the forward ``Spacing``
recorded in the transform's trace. The intensities differ from float64 resampling by float32 rounding (about
1e-7 relative), far below what moves a label; ``scripts/bench_infer.py`` and ``tests/inference`` compare the
labels with those of the bundle's own float64 pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)


def resample_in_float32(preprocessing: Any) -> int:
    """Make every ``Spacing``/``Spacingd`` in ``preprocessing`` (nested ``Compose`` included) resample in float32.

    Returns:
        how many transforms were changed (those already in float32 or lower precision are left as they are).
    """
    import torch
    from monai.transforms import Spacing, Spacingd

    changed = 0
    for transform in _flatten(preprocessing):
        if isinstance(transform, Spacingd):
            dtypes = tuple(_lowered(d, torch.float32) for d in transform.dtype)
            if dtypes != tuple(transform.dtype):
                transform.dtype, changed = dtypes, changed + 1
        elif isinstance(transform, Spacing):
            dtype = _lowered(transform.sp_resample.dtype, torch.float32)
            if dtype is not transform.sp_resample.dtype:
                transform.sp_resample.dtype, changed = dtype, changed + 1
    if changed:
        logger.debug("resampling in float32 in %d transform(s) (the bundle said float64)", changed)
    return changed


def _lowered(dtype: Any, float32: Any) -> Any:
    """``float32`` for a float64 dtype (numpy, torch or ``None``, MONAI's float64 default), else ``dtype``."""
    import numpy as np
    import torch

    if dtype is None or dtype in (np.float64, torch.float64) or str(dtype) in ("float64", "torch.float64"):
        return float32
    return dtype


def _flatten(transform: Any) -> Iterator[Any]:
    """``transform`` and, for a ``Compose``, every transform inside it, depth first."""
    inner = getattr(transform, "transforms", None)
    if isinstance(inner, (list, tuple)):
        for item in inner:
            yield from _flatten(item)
    else:
        yield transform
