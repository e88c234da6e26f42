"""Surface metrics against independent calculations and against MONAI, on real hippocampus labels.

The independent reference: surfaces from ``skimage.segmentation.find_boundaries`` (a different surface
extractor), all-pairs distances in mm with ``scipy.spatial.distance.cdist`` (brute force, no EDT, no tree),
and the metric formulas written out again here.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
    compute_surface_dice,
)
from scipy import ndimage
from scipy.spatial.distance import cdist
from skimage.segmentation import find_boundaries

from app.evaluation import evaluate_case
from app.evaluation.surface import surface_distances

pytestmark = pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")

CASES = ("hippocampus_001", "hippocampus_020", "hippocampus_195", "hippocampus_393")
#: anisotropic spacing imposed on the real label grids, so the spacing handling is exercised
SPACING = (0.8, 1.0, 2.5)


def perturbations(label: np.ndarray) -> dict[str, np.ndarray]:
    """Predictions made from a reference: erosion, a shift, and erosion of one label plus a shift."""
    eroded = np.where(ndimage.binary_erosion(label > 0), label, 0)
    shifted = np.roll(label, (2, -1, 1), axis=(0, 1, 2))
    mixed = np.where(ndimage.binary_erosion(label == 1), 1, 0) + 2 * np.roll(label == 2, 3, axis=1)
    return {"eroded": eroded, "shifted": shifted, "mixed": mixed.astype(label.dtype)}


def load(folder, case):
    image = nib.load(str(folder / f"{case}.nii.gz"))
    return np.asanyarray(image.dataobj).astype(np.int32)


def brute_force(pred: np.ndarray, ref: np.ndarray, spacing, tolerance: float) -> dict[str, float]:
    def surface_mm(mask):
        padded = np.pad(mask, 1)
        ring = find_boundaries(padded, mode="inner", connectivity=1) & padded
        return np.argwhere(ring) * np.asarray(spacing)

    p, r = surface_mm(pred), surface_mm(ref)
    pairwise = cdist(p, r)
    d_pr, d_rp = pairwise.min(axis=1), pairwise.min(axis=0)
    both = np.concatenate([d_pr, d_rp])
    return {
        "hd_mm": max(d_pr.max(), d_rp.max()),
        "hd95_mm": max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)),
        "assd_mm": both.mean(),
        "nsd": np.count_nonzero(both <= tolerance) / both.size,
    }


@pytest.mark.parametrize("case", CASES)
def test_against_brute_force_reference(hippocampus_labels, make_volume, case):
    ref = load(hippocampus_labels, case)
    for kind, pred in perturbations(ref).items():
        results = evaluate_case(make_volume(pred, SPACING), make_volume(ref, SPACING), {1: "a", 2: "p"})
        for result in results:
            p, r = pred == result.label, ref == result.label
            expected = brute_force(p, r, SPACING, tolerance=1.0)
            for metric, value in expected.items():
                assert getattr(result, metric) == pytest.approx(value, abs=1e-9), (case, kind, metric)
            tp = np.count_nonzero(p & r)
            assert result.dice == pytest.approx(2 * tp / (p.sum() + r.sum()))


@pytest.mark.parametrize("case", CASES[:2])
def test_edt_and_kdtree_backends_agree(hippocampus_labels, case):
    ref = load(hippocampus_labels, case)
    pred = perturbations(ref)["mixed"]
    for value in (1, 2):
        edt = surface_distances(pred == value, ref == value, SPACING, backend="edt")
        tree = surface_distances(pred == value, ref == value, SPACING, backend="kdtree")
        np.testing.assert_allclose(edt.pred_to_ref, tree.pred_to_ref, atol=1e-9)
        np.testing.assert_allclose(edt.ref_to_pred, tree.ref_to_pred, atol=1e-9)


def test_backends_agree_on_noisy_masks():
    rng = np.random.default_rng(7)
    ref = np.zeros((40, 30, 20), dtype=bool)
    ref[8:30, 5:25, 4:16] = True
    pred = ref ^ (rng.random(ref.shape) < 0.05)
    edt = surface_distances(pred, ref, (0.7, 0.7, 3.0), backend="edt")
    tree = surface_distances(pred, ref, (0.7, 0.7, 3.0), backend="kdtree")
    np.testing.assert_allclose(edt.pred_to_ref, tree.pred_to_ref, atol=1e-9)
    np.testing.assert_allclose(edt.ref_to_pred, tree.ref_to_pred, atol=1e-9)


def monai_values(pred: np.ndarray, ref: np.ndarray, spacing, tolerance: float) -> dict[str, float]:
    y_pred = torch.from_numpy(pred[None, None].astype(np.float32))
    y = torch.from_numpy(ref[None, None].astype(np.float32))
    spacing = list(spacing)
    kwargs = {"include_background": True}
    return {
        "dice": compute_dice(y_pred, y, **kwargs).item(),
        "iou": compute_iou(y_pred, y, **kwargs).item(),
        "hd_mm": compute_hausdorff_distance(y_pred, y, spacing=spacing, **kwargs).item(),
        "hd95_mm": compute_hausdorff_distance(y_pred, y, percentile=95, spacing=spacing, **kwargs).item(),
        "assd_mm": compute_average_surface_distance(
            y_pred, y, symmetric=True, spacing=spacing, **kwargs
        ).item(),
        "nsd": compute_surface_dice(y_pred, y, [tolerance], spacing=spacing, **kwargs).item(),
    }


@pytest.mark.parametrize("case", CASES[:2])
def test_agrees_with_monai(hippocampus_labels, make_volume, case):
    # MONAI computes in float32; agreement to 1e-4 (mm or score) is the float32 round-off.
    ref = load(hippocampus_labels, case)
    for kind, pred in perturbations(ref).items():
        results = evaluate_case(make_volume(pred, SPACING), make_volume(ref, SPACING), {1: "a", 2: "p"})
        for result in results:
            expected = monai_values(pred == result.label, ref == result.label, SPACING, tolerance=1.0)
            for metric, value in expected.items():
                assert getattr(result, metric) == pytest.approx(value, abs=1e-4), (case, kind, metric)


def test_agrees_with_monai_on_the_hd95_example():
    # The hand-computed HD95 example of test_evaluation_handcomputed: MONAI also gives 11.85 mm, not the
    # pooled 0.55 mm.
    ref = np.zeros((40, 40), dtype=np.uint8)
    ref[5:25, 5:25] = 1
    pred = ref.copy()
    pred[35:38, 13:16] = 1
    assert monai_values(pred > 0, ref > 0, (1.0, 1.0), 1.0)["hd95_mm"] == pytest.approx(11.85, abs=1e-4)
