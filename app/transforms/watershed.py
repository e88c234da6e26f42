"""Two-class probabilities -> one channel of labels whose foreground components do not merge through small gaps.

Contract of :class:`SeededWatershedd`: ``d[key]`` holds softmax probabilities ``(2, *spatial)`` (2D or 3D); it
becomes ``(1, *spatial)`` float labels, 1 on foreground (channel ``channel``) and 0 elsewhere, like
:class:`app.transforms.threshold.ForegroundThresholdd`, with two differences:

* the foreground is ``p > threshold`` split into regions grown from seeds, ``p_smooth > seed_threshold``
  (4-connected components, or 6-connected in 3D, of at least ``min_seed_size`` pixels), by MONAI's
  :class:`~monai.apps.pathology.transforms.post.array.Watershed` (scikit-image's) on ``-p_smooth``;
  ``p_smooth`` is ``p`` smoothed by a Gaussian of ``sigma`` pixels (no smoothing when 0). Foreground components
  without a seed are kept as they are;
* wherever two regions touch (face-adjacent pixels), the pixel of the pair with the lower index along that axis
  becomes background: a line one pixel wide, so that the regions are separate face-connected components of the
  output. The output thus has at most as many foreground pixels as the plain threshold.

Why: in the EM bundle, cells are the 4-connected components of the predicted cell mask, and one missed membrane
pixel merges two cells (the Rand error counts the merge over every pixel pair of both). Seeds taken where the
network is sure of the cell interior are separated by its uncertain membranes, so a gap of a few pixels in the
thresholded membrane no longer joins them: the watershed draws the line along the ridge of membrane probability
between them. This is the usual seeded-watershed step of EM boundary prediction (e.g. the ISBI 2012 entries that
post-processed the U-Net's probability maps). The parameters are a calibration chosen on data the network was not
trained on and never on the validation set (the EM bundle's docs show the sweep).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.apps.pathology.transforms.post.array import Watershed
from monai.config import KeysCollection
from monai.utils import convert_to_dst_type
from scipy import ndimage

from app.transforms.threshold import ForegroundThresholdd


class SeededWatershedd(ForegroundThresholdd):
    """Foreground labels from two-class probabilities, split by a seeded watershed (contract in the module
    docstring): a :class:`ForegroundThresholdd` (``threshold`` and ``channel`` are validated there) whose
    foreground is then split.

    Args:
        keys: the probability keys.
        threshold: in (0, 1); the foreground mask is ``p > threshold`` (as :class:`ForegroundThresholdd`).
        seed_threshold: in [threshold, 1); seeds are the components of ``p_smooth > seed_threshold``.
        min_seed_size: seeds with fewer pixels are dropped (0 keeps all).
        sigma: Gaussian smoothing of ``p`` in pixels for the seeds and the flooding (0: none).
        channel: the foreground channel; the output label value is the channel's index (1 on channel 1's
            regions, or 0 on channel 0's regions and 1 elsewhere).
    """

    def __init__(
        self,
        keys: KeysCollection,
        threshold: float = 0.5,
        seed_threshold: float = 0.9,
        min_seed_size: int = 0,
        sigma: float = 0.0,
        channel: int = 1,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, threshold=threshold, channel=channel, allow_missing_keys=allow_missing_keys)
        if not threshold <= seed_threshold < 1.0:
            raise ValueError(
                f"seed_threshold must be in [threshold, 1) = [{threshold}, 1), got {seed_threshold}"
            )
        if min_seed_size < 0 or sigma < 0:
            raise ValueError(f"min_seed_size and sigma must be >= 0, got {min_seed_size} and {sigma}")
        self.seed_threshold = float(seed_threshold)
        self.min_seed_size = int(min_seed_size)
        self.sigma = float(sigma)
        self._flood = Watershed(connectivity=1, dtype=np.int64)

    def regions(self, probability: np.ndarray) -> np.ndarray:
        """Region labels of one foreground probability map ``(*spatial)``: 0 background, 1..n the regions,
        before the separating lines are drawn."""
        smooth = ndimage.gaussian_filter(probability, self.sigma) if self.sigma > 0 else probability
        face = ndimage.generate_binary_structure(probability.ndim, 1)
        seeds, _ = ndimage.label(smooth > self.seed_threshold, structure=face)
        if self.min_seed_size > 0:
            small = np.bincount(seeds.ravel()) < self.min_seed_size
            small[0] = False
            seeds[small[seeds]] = 0
        mask = probability > self.threshold
        regions = np.asarray(self._flood(-smooth[None], mask=mask[None], markers=seeds[None]))[0]
        unseeded, _ = ndimage.label(mask & (regions == 0), structure=face)
        regions[unseeded > 0] = unseeded[unseeded > 0] + regions.max()
        return regions

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            probabilities = d[key]
            if probabilities.shape[0] != 2 or probabilities.ndim not in (3, 4):
                raise ValueError(
                    f"{key!r}: expected two-class probabilities (2, *spatial) in 2D or 3D, got {probabilities.shape}"
                )
            p = probabilities[self.channel].detach().cpu().numpy().astype(np.float32, copy=False)
            foreground = separated_foreground(self.regions(p))
            labels = foreground if self.channel == 1 else ~foreground
            dtype = probabilities.dtype if probabilities.is_floating_point() else torch.float32
            d[key] = convert_to_dst_type(labels[None], probabilities, dtype=dtype)[0]
        return d


def separated_foreground(regions: np.ndarray) -> np.ndarray:
    """Boolean foreground of a region label map in which no two different regions are face-adjacent: of each
    face-adjacent pair of pixels in different regions, the one with the lower index along that axis is cleared."""
    foreground = regions > 0
    for axis in range(regions.ndim):
        lower = [slice(None)] * regions.ndim
        upper = [slice(None)] * regions.ndim
        lower[axis], upper[axis] = slice(None, -1), slice(1, None)
        a, b = regions[tuple(lower)], regions[tuple(upper)]
        foreground[tuple(lower)] &= ~((a != b) & (a > 0) & (b > 0))
    return foreground
