"""The U-Net paper's pixel weight map as a MONAI dictionary transform (2D and 3D).

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

* ``w_c`` balances class frequencies: class ``c`` gets ``s * n_c ** -p`` (``n_c`` voxels of class ``c``), ``s`` chosen
  so that the mean of ``w_c`` over the image is 1. ``p = 1`` (``balance_power``, the default) is the paper's
  full balancing, ``N / (K * n_c)`` for ``K`` classes present in ``N`` voxels; ``p = 0.5`` softens it (a class
  16x rarer is weighted 4x, not 16x), which limits the bias toward over-segmenting the rare class that full
  balancing puts into the cross-entropy; ``p = 0`` turns it off. Fixed per-class weights can be given instead.
* ``d1``/``d2`` are the distances (in voxels by default, or in the units of ``spacing``) to the nearest and the
  second-nearest object, objects being the connected components of each foreground class (``connectivity``
  1 = faces only: 4-connected in 2D, 6-connected in 3D, as in the paper).
* As in the paper's Fig. 3 and common implementations, the border term is applied to voxels that belong to no
  object (the background/gap voxels), where it marks the thin separations between touching objects.

Hand-written because MONAI has no such transform. It is deterministic, so placed before the first random
transform of a ``CacheDataset`` pipeline it is computed once per case and cached; list its output key with the
label in the spatial augmentations (bilinear for the weight, nearest for the label) so that it is deformed with
them.

Speed: a per-object Euclidean distance transform restricted to the object's bounding box plus the distance
beyond which the border term is below ``tolerance`` (``sigma * sqrt(2 ln(w0 / tolerance))``): exact wherever the
term matters, O(objects x box) instead of O(objects x image).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_tensor
from scipy import ndimage

logger = logging.getLogger(__name__)


def unet_weight_map(
    label: np.ndarray,
    *,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: Sequence[float] | None = None,
    balance_power: float = 1.0,
    foreground_labels: Sequence[int] | None = None,
    connectivity: int = 1,
    spacing: Sequence[float] | None = None,
    tolerance: float = 1e-3,
) -> np.ndarray:
    """Weight map for one label image.

    Args:
        label: integer label image, 2D ``(H, W)`` or 3D ``(H, W, D)``, no channel axis.
        w0: border term amplitude.
        sigma: border term width, in voxels (or in the units of ``spacing`` when given).
        class_weights: fixed ``w_c`` per label value (index = label value); ``None`` balances frequencies.
        balance_power: exponent ``p`` of the frequency balancing (1 = full, 0 = none); unused with ``class_weights``.
        foreground_labels: label values whose connected components are objects; default every value > 0.
        connectivity: ``scipy.ndimage.generate_binary_structure`` connectivity (1 = faces).
        spacing: voxel size per axis; distances are in voxels when ``None``.
        tolerance: border term values below this are treated as 0 (sets the search margin).

    Returns:
        float32 array of ``label``'s shape.
    """
    label = np.asarray(label)
    if label.ndim not in (2, 3):
        raise ValueError(f"weight map needs a 2D or 3D label without channel axis, got shape {label.shape}")
    label = label.astype(np.int64, copy=False)
    weight = _class_weights(label, class_weights, balance_power)
    if w0 <= 0:
        return weight
    values = foreground_labels if foreground_labels is not None else [v for v in np.unique(label) if v > 0]
    structure = ndimage.generate_binary_structure(label.ndim, connectivity)
    objects: list[np.ndarray] = []
    for value in values:
        components, n = ndimage.label(label == value, structure=structure)
        objects.extend(components == i for i in range(1, n + 1))
    if len(objects) < 2:
        return weight  # d2 is infinite: the border term vanishes everywhere
    sampling = np.ones(label.ndim) if spacing is None else np.asarray(spacing, dtype=np.float64)
    margin_mm = sigma * np.sqrt(2.0 * np.log(w0 / tolerance)) if w0 > tolerance else 0.0
    margin = np.ceil(margin_mm / sampling).astype(int)
    d1 = np.full(label.shape, np.inf, dtype=np.float32)
    d2 = np.full(label.shape, np.inf, dtype=np.float32)
    for mask in objects:
        box = _box(mask, margin)
        dist = ndimage.distance_transform_edt(~mask[box], sampling=sampling).astype(np.float32)
        a, b = d1[box], d2[box]
        d2[box] = np.minimum(b, np.maximum(a, dist))
        d1[box] = np.minimum(a, dist)
    in_gap = np.isin(label, values, invert=True) & np.isfinite(d2)
    border = np.zeros(label.shape, dtype=np.float32)
    border[in_gap] = w0 * np.exp(-((d1[in_gap] + d2[in_gap]) ** 2) / (2.0 * sigma**2))
    return weight + border


def _class_weights(label: np.ndarray, class_weights: Sequence[float] | None, power: float) -> np.ndarray:
    if class_weights is not None:
        table = np.asarray(class_weights, dtype=np.float32)
        if label.max(initial=0) >= len(table) or label.min(initial=0) < 0:
            raise ValueError(
                f"class_weights has {len(table)} entries but labels span {label.min()}..{label.max()}"
            )
        return table[label]
    if power < 0:
        raise ValueError(f"balance_power must be >= 0, got {power}")
    if label.min(initial=0) < 0:
        raise ValueError(f"labels must be >= 0, got {label.min()}")
    values, counts = np.unique(label, return_counts=True)
    counts = counts.astype(np.float64)
    scale = label.size / np.sum(counts ** (1.0 - power))  # mean of w_c over the image is 1
    table = np.zeros(int(values.max()) + 1, dtype=np.float32)
    table[values] = scale * counts**-power
    return table[label]


def _box(mask: np.ndarray, margin: np.ndarray) -> tuple[slice, ...]:
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    return tuple(
        slice(max(s.start - m, 0), min(s.stop + m, n))
        for s, m, n in zip(box, margin, mask.shape, strict=True)
    )


class UNetWeightMap(Transform):
    """Array transform: channel-first label ``(1, *spatial)`` -> weight ``(1, *spatial)`` float32.

    Keyword arguments are those of :func:`unet_weight_map`.
    """

    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs

    def __call__(self, label) -> torch.Tensor:
        array = label.detach().cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
        if array.shape[0] != 1:
            raise ValueError(f"expected a single-channel label (1, *spatial), got shape {array.shape}")
        return convert_to_tensor(unet_weight_map(array[0], **self.kwargs)[None], track_meta=False)


class UNetWeightMapd(MapTransform):
    """Dictionary version: reads ``keys`` (a channel-first label), writes ``weight_key`` beside it.

    The output is a MetaTensor carrying the label's metadata when the label is one, so later spatial transforms
    treat it like any other image on the label's grid.

    Args:
        keys: the label key (one).
        weight_key: where to store the weight map.
        w0, sigma, class_weights, balance_power, foreground_labels, connectivity, tolerance: see
            :func:`unet_weight_map`.
        use_spacing: measure distances in mm from the label's affine (``pixdim``) rather than in voxels.
    """

    def __init__(
        self,
        keys: KeysCollection,
        weight_key: str = "weight",
        *,
        w0: float = 10.0,
        sigma: float = 5.0,
        class_weights: Sequence[float] | None = None,
        balance_power: float = 1.0,
        foreground_labels: Sequence[int] | None = None,
        connectivity: int = 1,
        use_spacing: bool = False,
        tolerance: float = 1e-3,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError("UNetWeightMapd takes exactly one label key")
        self.weight_key = weight_key
        self.use_spacing = use_spacing
        self.kwargs = dict(
            w0=w0,
            sigma=sigma,
            class_weights=class_weights,
            balance_power=balance_power,
            foreground_labels=foreground_labels,
            connectivity=connectivity,
            tolerance=tolerance,
        )

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            spacing = None
            if self.use_spacing and hasattr(label, "pixdim"):
                spacing = [float(s) for s in label.pixdim[: label.ndim - 1]]
            weight = UNetWeightMap(spacing=spacing, **self.kwargs)(label)
            if isinstance(label, MetaTensor):
                weight = MetaTensor(
                    weight,
                    affine=label.affine,
                    meta={k: v for k, v in label.meta.items() if k != "affine"},  # given as affine=
                    applied_operations=list(label.applied_operations),
                )
            d[self.weight_key] = weight
        return d
