"""The ISBI 2012 leaderboard's current scores: foreground-restricted Rand and information-theoretic F-scores of
one slice after thinning the proposal's borders, V_rand (thinned) and V_info (thinned).

Definition (Arganda-Carreras et al. 2015, Front. Neuroanat. 9:142, section "Evaluation metrics"; the Fiji
script "Segmentation evaluation after border thinning", ``trainableSegmentation.metrics.RandError``
``getMaximalVRandAfterThinning`` and ``VariationOfInformation`` ``getMaximalVInfoAfterThinning``):

1. **Thinning.** The proposal's membrane (its boundary map) is thinned to one-pixel-wide lines, so that a
   boundary drawn thicker or thinner than the annotators drew it costs nothing; the cells are then the
   4-connected components of what is not boundary (a one-pixel line, 8-connected, still separates them).
   Thinning here is scikit-image's :func:`~skimage.morphology.skeletonize` (Zhang-Suen), where Fiji uses
   ImageJ's ``skeletonize``: both are topology-preserving 2D thinnings to one-pixel lines; they may place a line
   one pixel apart, which moves a score by O(1/n). The ground truth is used as labelled (its cells are the
   4-connected components of its cell mask).
2. **Foreground restriction.** Only the n ground-truth cell pixels are scored (ground-truth membrane drops
   out); a remaining proposal boundary pixel on a true cell is "unassigned": a singleton segment of its own.
3. **Scores.** With the contingency table p_ij = |true cell i and proposed cell j| / n (j >= 1), the row sums
   t_i (true cells), the column sums s_j (proposed cells) and each unassigned pixel a singleton of probability
   1/n (c of them):

   * ``V_rand = sum p_ij^2 / (0.5 sum t_i^2 + 0.5 sum s_j^2)``, every sum including the c singletons' (1/n)^2;
     the harmonic mean of V_rand_split = sum p_ij^2 / sum t_i^2 and V_rand_merge = sum p_ij^2 / sum s_j^2.
   * ``V_info = I(S;T) / (0.5 H(S) + 0.5 H(T))``, H the entropies (natural log) of the proposed (S, singletons
     included) and true (T) segmentations and I their mutual information; the harmonic mean of
     I/H(S) and I/H(T). As in Fiji, 0 when either entropy is 0 (a single segment).

   Both are in [0, 1], **higher is better**, 1 for a proposal with exactly the true cells.

The leaderboard takes the best of each over 11 thresholds (0, 0.1, ..., 1) of a submitted probability map. The
bundle's output is already a binary decision (its calibrated rule), so these functions score that one binary
map, as the Fiji script does with "Binary proposal" ticked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

__all__ = [
    "ForegroundContingency",
    "foreground_contingency",
    "info_fscore",
    "rand_fscore",
    "thinned_cells",
    "v_info",
    "v_rand",
]

_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)
_EDGE_MARGIN = 16  # pixels mirrored around the slice before thinning (see thinned_cells)


@dataclass(frozen=True)
class ForegroundContingency:
    """Overlap counts of a proposal with the ground truth's cell pixels.

    ``counts[i, j]``: pixels of true cell ``i`` in proposed cell ``j`` (rows and columns of labels that occur,
    in label order, unassigned pixels excluded); ``unassigned``: true cell pixels on proposed boundary (each a
    singleton); ``n``: all true cell pixels (``counts.sum() + unassigned``).
    """

    counts: np.ndarray
    true_sizes: np.ndarray
    unassigned: int

    @property
    def n(self) -> int:
        return int(self.true_sizes.sum())


def foreground_contingency(pred_labels: np.ndarray, true_labels: np.ndarray) -> ForegroundContingency:
    """Contingency of two label maps of the same shape, restricted to ``true_labels > 0``; proposal label 0 is
    unassigned (boundary)."""
    true = np.asarray(true_labels).ravel()
    pred = np.asarray(pred_labels).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"label maps differ in size: {np.shape(pred_labels)} and {np.shape(true_labels)}")
    scored = true > 0
    true, pred = true[scored], pred[scored]
    _, true_index = np.unique(true, return_inverse=True)
    true_sizes = np.bincount(true_index).astype(np.int64)
    assigned = pred > 0
    _, pred_index = np.unique(pred[assigned], return_inverse=True)
    counts = np.zeros((true_sizes.size, int(pred_index.max(initial=-1)) + 1), np.int64)
    np.add.at(counts, (true_index[assigned], pred_index), 1)
    return ForegroundContingency(counts, true_sizes, int(np.count_nonzero(~assigned)))


def thinned_cells(pred_cell: np.ndarray) -> np.ndarray:
    """Cell labels of a binary cell mask after thinning its boundary (``~pred_cell``) to one-pixel lines: the
    4-connected components of everything off the thinned boundary, 0 on it."""
    cell = np.asarray(pred_cell).astype(bool, copy=False)
    # A frame of boundary around the slice makes the cells at its edge holes of the boundary map, which thinning
    # keeps (without it the line between two edge cells may be thinned away from the edge and merge them). The
    # slice is first mirrored by _EDGE_MARGIN pixels, so that the lines' forks into the frame fall outside it.
    m = _EDGE_MARGIN
    mirrored = np.pad(~cell, m, mode="symmetric")
    framed = np.pad(mirrored, 1, constant_values=True)
    boundary = skeletonize(framed)[m + 1 : -m - 1, m + 1 : -m - 1]
    labels, _ = ndimage.label(~boundary, structure=_FOUR_CONNECTED)
    return labels


def _table(pred_cell: np.ndarray, true_cell: np.ndarray) -> ForegroundContingency:
    pred = np.asarray(pred_cell).astype(bool, copy=False)
    true = np.asarray(true_cell).astype(bool, copy=False)
    if pred.ndim != 2 or pred.shape != true.shape:
        raise ValueError(
            f"expected two 2D cell masks of the same shape, got {pred.shape} (prediction) and {true.shape} (truth)"
        )
    true_labels, _ = ndimage.label(true, structure=_FOUR_CONNECTED)
    return foreground_contingency(thinned_cells(pred), true_labels)


def rand_fscore(table: ForegroundContingency) -> float:
    """V_rand of a contingency table (0.0 without true cell pixels)."""
    n = table.n
    if n == 0:
        return 0.0
    singletons = table.unassigned / n**2  # c singletons of probability 1/n each
    sum_pij2 = float(np.sum((table.counts / n) ** 2)) + singletons
    sum_t2 = float(np.sum((table.true_sizes / n) ** 2))
    sum_s2 = float(np.sum((table.counts.sum(axis=0) / n) ** 2)) + singletons
    return 2.0 * sum_pij2 / (sum_t2 + sum_s2)


def _plogp(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(np.sum(p * np.log(p)))


def info_fscore(table: ForegroundContingency) -> float:
    """V_info of a contingency table (0.0 without true cell pixels, or when either entropy is 0)."""
    n = table.n
    if n == 0:
        return 0.0
    singletons = table.unassigned / n * np.log(n)  # -sum over c singletons of (1/n) log(1/n)
    h_true = -_plogp(table.true_sizes / n)
    h_pred = -_plogp(table.counts.sum(axis=0) / n) + singletons
    h_joint = -_plogp(table.counts / n) + singletons
    if h_true <= 0 or h_pred <= 0:
        return 0.0
    mutual = h_true + h_pred - h_joint
    return float(2.0 * mutual / (h_true + h_pred))


def v_rand(pred_cell: np.ndarray, true_cell: np.ndarray) -> float:
    """Foreground-restricted Rand F-score after border thinning of two 2D cell masks, in [0, 1], higher is
    better (see the module docstring)."""
    return rand_fscore(_table(pred_cell, true_cell))


def v_info(pred_cell: np.ndarray, true_cell: np.ndarray) -> float:
    """Foreground-restricted information-theoretic F-score after border thinning of two 2D cell masks, in
    [0, 1], higher is better (see the module docstring)."""
    return info_fscore(_table(pred_cell, true_cell))
