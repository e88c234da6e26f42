"""Electron-microscopy membrane metrics of the ISBI 2012 challenge, on binary cell/membrane maps of one slice.

Contract: ``pred_cell`` and ``true_cell`` are 2D arrays of the same shape ``(H, W)``, truthy where a pixel is cell
interior and falsy on membrane (the challenge's PNG convention is 255 cell, 0 membrane; pass ``png > 127``).

* :func:`pixel_error`: ``1 - pixel accuracy`` of the binary map (the fraction of pixels of the wrong class; the
  challenge page's second wording, "squared Euclidean distance between the original and the result labels").
* :func:`pixel_fscore_error`: the pixel error of the ISBI 2012 leaderboard and of the papers that report on it
  (the U-Net paper's 0.0611): ``1 - F-score`` of the *cell* pixels (Fiji ``trainableSegmentation.metrics.
  PixelError.getPixelErrorMaximalFScore``: positives are label pixels ``> 0``, i.e. cell interior; "maximal" over
  the thresholds of a probability map, which for a binary map is its own F-score). It is :func:`pixel_error`
  divided by the predicted plus the true cell fraction, so it is the lower of the two where cells fill most of
  the slice (ISBI: about 77 %; 0.0535 where :func:`pixel_error` is 0.0827 on this project's maps) and the higher
  where they do not: the two are not interchangeable.
* :func:`adapted_rand_error`: foreground-restricted adapted Rand error (Arganda-Carreras et al. 2015, the
  ISBI 2012 / SNEMI3D definition, ``1 - F-score`` of the Rand pair precision/recall). Cells are the 4-connected
  components of each cell mask (the paper's and Fiji's connectivity). Ground-truth membrane pixels are left out
  (:func:`skimage.metrics.adapted_rand_error` ignores ``ignore_labels`` in the *true* image only). What happens
  to *predicted* membrane pixels decides the number (``membrane``):

  - ``"unassigned"`` (default, the challenge's definition): the proposal's zero component is "un-assigned out
    space" and pruned, as in the reference implementations (Fiji ``trainableSegmentation.metrics.RandError``,
    ``foregroundRestrictedStatsN2`` / ``adaptedRandIndexStats3DN2``; the SNEMI3D ``adapted_rand`` script): each
    predicted membrane pixel counts as its own singleton. It joins no pair, so a membrane pixel inside a true
    cell costs recall (a split of that pixel from its cell) and never merges cells; a missing membrane still
    merges the cells on both sides. Computed with scikit-image by giving each predicted membrane pixel a label
    of its own (self-pairs aside, the reference formula: the two differ by O(1/n)).
  - ``"segment"``: scikit-image's semantics taken literally, predicted membrane is label 0 of the test image,
    i.e. one segment that joins every true cell it touches. A predicted membrane one pixel thicker than the truth
    already costs about 0.1 (measured on the training labels): a strict score of membrane *width* as much as of
    topology.
  - ``"thinned"``: predicted cells are first grown over the predicted membrane
    (:func:`skimage.segmentation.expand_labels`, each membrane pixel to its nearest cell), so that only splits
    and merges count. This approximates the challenge's "V_Rand after border thinning", where the proposal's
    borders are thinned to one pixel before scoring.

* :func:`~app.evaluation.em_thinned.v_rand` and :func:`~app.evaluation.em_thinned.v_info`: the leaderboard's
  current scores, the foreground-restricted Rand and information-theoretic F-scores after thinning the
  proposal's borders to one pixel (V_rand and V_info "thinned"; :mod:`app.evaluation.em_thinned`). Unlike the
  errors above, **higher is better** (:data:`HIGHER_IS_BETTER`).

Hand-written wrappers because scikit-image has the Rand error but neither the component labelling nor the
thinning step; no MONAI metric covers either score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
from scipy import ndimage
from skimage.metrics import adapted_rand_error as _skimage_adapted_rand_error
from skimage.segmentation import expand_labels

from app.evaluation import overlap
from app.evaluation.em_thinned import v_info, v_rand

__all__ = [
    "EM_SCORES",
    "HIGHER_IS_BETTER",
    "MEMBRANE_MODES",
    "SCORES",
    "adapted_rand_error",
    "cell_components",
    "em_cell_value",
    "EmRow",
    "em_scores",
    "em_worst_case",
    "pixel_error",
    "pixel_fscore_error",
]

MembraneMode = Literal["unassigned", "segment", "thinned"]
#: how predicted membrane pixels enter the adapted Rand error (see the module docstring)
MEMBRANE_MODES: tuple[MembraneMode, ...] = ("unassigned", "segment", "thinned")

_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def _check_pair(pred_cell: np.ndarray, true_cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred_cell).astype(bool, copy=False)
    true = np.asarray(true_cell).astype(bool, copy=False)
    if pred.ndim != 2 or pred.shape != true.shape:
        raise ValueError(
            f"expected two 2D cell masks of the same shape, got {pred.shape} (prediction) and {true.shape} (truth)"
        )
    return pred, true


def cell_components(cell_mask: np.ndarray) -> np.ndarray:
    """4-connected components of a 2D cell mask: int32 labels, 0 on membrane, 1..n for the cells."""
    labels, _ = ndimage.label(np.asarray(cell_mask).astype(bool, copy=False), structure=_FOUR_CONNECTED)
    return labels.astype(np.int32, copy=False)


def pixel_error(pred_cell: np.ndarray, true_cell: np.ndarray) -> float:
    """Fraction of pixels whose membrane/cell class differs (``1 - accuracy``), in [0, 1]."""
    pred, true = _check_pair(pred_cell, true_cell)
    return float(np.count_nonzero(pred != true)) / pred.size


def pixel_fscore_error(pred_cell: np.ndarray, true_cell: np.ndarray) -> float:
    """``1 - F1`` of the cell pixels, in [0, 1]: ``F1 = 2 TP / (2 TP + FP + FN)`` with cell interior positive, i.e.
    ``1 -`` the Dice of the cell masks (:mod:`app.evaluation.overlap`).

    1.0 when no cell pixel is shared, also when neither map has one: F is 0/0 there, and Fiji's maximal-F loop
    (which keeps an F only if it is above 0) reports the worst. Per slice; the challenge pools TP, FP and FN over
    its 30-slice stack before taking F.
    """
    counts = overlap.count(*_check_pair(pred_cell, true_cell))
    if counts.tp == 0:
        return 1.0
    return 1.0 - overlap.scores(counts)["dice"]


def adapted_rand_error(
    pred_cell: np.ndarray, true_cell: np.ndarray, *, membrane: MembraneMode = "unassigned"
) -> float:
    """Foreground-restricted adapted Rand error of one slice, in [0, 1] (0 = the same cells).

    Args:
        pred_cell: predicted cell mask ``(H, W)``.
        true_cell: ground-truth cell mask ``(H, W)``; its membrane pixels are ignored.
        membrane: how predicted membrane pixels count: ``"unassigned"`` (the challenge's definition),
            ``"segment"`` or ``"thinned"`` (see the module docstring).

    Returns:
        ``1 - F``, F the harmonic mean of the Rand pair precision and recall; 1.0 when the truth has no cell
        pixel pair to score.
    """
    if membrane not in MEMBRANE_MODES:
        raise ValueError(f"membrane must be one of {MEMBRANE_MODES}, got {membrane!r}")
    pred, true = _check_pair(pred_cell, true_cell)
    true_labels = cell_components(true)
    if np.count_nonzero(true_labels) < 2:
        return 1.0
    pred_labels = cell_components(pred)
    if membrane == "thinned" and pred_labels.any():
        pred_labels = expand_labels(pred_labels, distance=max(pred.shape))
    elif membrane == "unassigned":
        pred_labels = _membrane_as_singletons(pred_labels)
    error, _, _ = _skimage_adapted_rand_error(true_labels, pred_labels, ignore_labels=(0,))
    return float(error)


#: every score of one slice by name, in report order: ``(pred_cell, true_cell) -> score``; lower is better except
#: for the F-scores in :data:`HIGHER_IS_BETTER`
SCORES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "rand_error": adapted_rand_error,
    "rand_error_membrane_segment": partial(adapted_rand_error, membrane="segment"),
    "rand_error_thinned": partial(adapted_rand_error, membrane="thinned"),
    "pixel_error": pixel_error,
    "pixel_fscore_error": pixel_fscore_error,
    "v_rand": v_rand,
    "v_info": v_info,
}
#: the scores of :data:`SCORES` where 1 is best and 0 worst (the challenge's F-scores)
HIGHER_IS_BETTER: frozenset[str] = frozenset({"v_rand", "v_info"})
#: the per-case scores of :func:`em_scores`, in report order
EM_SCORES: tuple[str, ...] = tuple(SCORES)


def _membrane_as_singletons(labels: np.ndarray) -> np.ndarray:
    """Cell labels with every 0 (membrane) pixel given a label of its own, above the cells' labels."""
    out = labels.astype(np.int64)
    membrane = out == 0
    out[membrane] = out.max() + 1 + np.arange(np.count_nonzero(membrane))
    return out


def em_cell_value(labels: Mapping[int, str] | None) -> int | None:
    """The label value of ``"cell"`` when ``labels`` name exactly a membrane and a cell class (any case), else
    ``None``: how :func:`app.evaluation.runner.evaluate_folders` knows to add the EM scores."""
    if not labels or len(labels) != 2:
        return None
    by_name = {name.strip().lower(): value for value, name in labels.items()}
    return by_name["cell"] if set(by_name) == {"membrane", "cell"} else None


@dataclass(frozen=True)
class EmRow:
    """The EM scores of one case (:data:`EM_SCORES`), with the case's flag (``ok``, or why it scores the worst)."""

    case_id: str
    flag: str
    scores: Mapping[str, float]

    def as_dict(self) -> dict[str, Any]:
        """``case_id``, ``flag`` and the scores, flat (a CSV row / JSON object)."""
        return {"case_id": self.case_id, "flag": self.flag, **self.scores}


def em_worst_case(case_id: str, flag: str) -> EmRow:
    """The EM row of a case without a usable prediction: every score at its worst (1.0 for the errors, 0.0 for
    the F-scores)."""
    return EmRow(case_id, flag, {name: 0.0 if name in HIGHER_IS_BETTER else 1.0 for name in EM_SCORES})


def em_scores(pred_labels: np.ndarray, ref_labels: np.ndarray, cell_value: int) -> dict[str, float]:
    """:data:`EM_SCORES` of one case: a 2D label map, or a 3D stack scored per 2D slice (last axis) and averaged.

    Pixels equal to ``cell_value`` are cell interior, every other value is membrane.
    """
    pred, ref = np.asarray(pred_labels), np.asarray(ref_labels)
    if pred.shape != ref.shape or pred.ndim not in (2, 3):
        raise ValueError(f"expected 2D maps or 3D stacks of the same shape, got {pred.shape} and {ref.shape}")
    slices = [(pred, ref)] if pred.ndim == 2 else [(pred[..., k], ref[..., k]) for k in range(pred.shape[-1])]
    cells = [(p == cell_value, r == cell_value) for p, r in slices]
    return {name: float(np.mean([score(p, r) for p, r in cells])) for name, score in SCORES.items()}
