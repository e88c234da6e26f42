"""Metrics on shapes whose values are computed by hand (in the comments), under anisotropic spacing."""

from __future__ import annotations

import numpy as np
import pytest

from app.evaluation import evaluate_case
from app.evaluation.surface import surface_distances

SPACING = (0.5, 1.0, 3.0)


def cube(shape, lo, hi) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = 1
    return mask


def test_shifted_cubes_anisotropic(make_volume):
    # Reference: a 10x10x10-voxel cube at [10:20]^3. Prediction: the same cube shifted by +2 voxels along
    # axis 0 (2 x 0.5 mm = 1 mm) and +1 voxel along axis 2 (1 x 3 mm = 3 mm): [12:22, 10:20, 11:21].
    ref = cube((32, 32, 32), (10, 10, 10), (20, 20, 20))
    pred = cube((32, 32, 32), (12, 10, 11), (22, 20, 21))
    [result] = evaluate_case(make_volume(pred, SPACING), make_volume(ref, SPACING), {1: "cube"})
    # Overlap [12:20, 10:20, 11:20] = 8 * 10 * 9 = 720 voxels; each cube has 1000.
    assert (result.tp, result.fp, result.fn) == (720, 280, 280)
    assert result.dice == pytest.approx(2 * 720 / 2000)  # 0.72
    assert result.iou == pytest.approx(720 / 1280)  # 0.5625
    assert result.precision == pytest.approx(0.72) and result.recall == pytest.approx(0.72)
    # Farthest prediction surface voxel: the edge (21, j, 20). Every reference surface voxel has i <= 19 and
    # k <= 19, so the nearest is (19, j, 19): sqrt((2 * 0.5)^2 + (1 * 3)^2) = sqrt(10) mm. Symmetrically the
    # reference edge (10, j, 10) is sqrt(10) mm from the prediction voxel (12, j, 11).
    assert result.hd_mm == pytest.approx(np.sqrt(10.0))
    # Voxel = 0.5 * 1 * 3 = 1.5 mm^3; 1000 voxels = 1.5 mL each, no difference.
    assert result.volume_ref_ml == pytest.approx(1.5)
    assert result.volume_pred_ml == pytest.approx(1.5)
    assert result.volume_diff_ml == pytest.approx(0.0)
    assert result.flag == "ok"


def test_nested_cubes_distances_are_face_gaps(make_volume):
    # Reference [4:16]^3, prediction [5:15]^3: one voxel thinner on every side.
    # Prediction -> reference: each prediction surface voxel is one step from the reference surface along
    # the axis it faces, at most 3 mm (axis 2); its corners are nearer along axes 0/1, so the max is 3 mm.
    # Reference -> prediction: the reference corner (4, 4, 4) has no prediction voxel within one step on
    # every axis: its nearest is (5, 5, 5), sqrt(0.5^2 + 1^2 + 3^2) = sqrt(10.25) mm away: the Hausdorff.
    ref = cube((20, 20, 20), (4, 4, 4), (16, 16, 16))
    pred = cube((20, 20, 20), (5, 5, 5), (15, 15, 15))
    [result] = evaluate_case(make_volume(pred, SPACING), make_volume(ref, SPACING), {1: "cube"})
    assert result.hd_mm == pytest.approx(np.sqrt(10.25))
    # Dice: 2 * 1000 / (1000 + 1728).
    assert result.dice == pytest.approx(2000 / 2728)
    assert result.recall == pytest.approx(1000 / 1728) and result.precision == pytest.approx(1.0)


def test_hd95_is_the_larger_directed_percentile_not_the_pooled_one(make_volume):
    # 2D, spacing 1 mm. Reference: the square [5:25, 5:25] (surface 20 * 20 - 18 * 18 = 76 pixels).
    # Prediction: the same square plus a 3x3 blob at rows 35..37, columns 13..15 (surface 8 pixels).
    # d(P->R): 76 zeros, and the blob's ring at (row - 24) mm from the reference edge row 24:
    # 3 x 11, 2 x 12 (row 36 has only its two ends on the ring), 3 x 13 -> 84 values.
    # d(R->P): 76 zeros.
    # p95 of d(P->R): position 0.95 * 83 = 78.85 between sorted[78] = 11 and sorted[79] = 12 -> 11.85 mm.
    # p95 of d(R->P) = 0, so HD95 = max(11.85, 0) = 11.85 mm. (The pooled definition would give: 160
    # values, position 0.95 * 159 = 151.05 between sorted[151] = 0 and sorted[152] = 11 -> 0.55 mm.)
    ref = np.zeros((40, 40), dtype=np.uint8)
    ref[5:25, 5:25] = 1
    pred = ref.copy()
    pred[35:38, 13:16] = 1
    distances = surface_distances(pred > 0, ref > 0, (1.0, 1.0))
    assert sorted(distances.pred_to_ref[distances.pred_to_ref > 0].tolist()) == [
        11,
        11,
        11,
        12,
        12,
        13,
        13,
        13,
    ]
    assert distances.ref_to_pred.size == 76 and not distances.ref_to_pred.any()
    assert distances.hd95() == pytest.approx(11.85)
    pooled = np.percentile(np.concatenate([distances.pred_to_ref, distances.ref_to_pred]), 95)
    assert pooled == pytest.approx(0.55)
    [result] = evaluate_case(make_volume(pred, (1.0, 1.0)), make_volume(ref, (1.0, 1.0)), {1: "square"})
    assert result.hd95_mm == pytest.approx(11.85)
    assert result.hd_mm == pytest.approx(13.0)
    # ASSD = (3*11 + 2*12 + 3*13) / (84 + 76) = 96 / 160 = 0.6 mm.
    assert result.assd_mm == pytest.approx(0.6)
    # NSD at 1 mm: (76 + 76) / 160 = 0.95.
    assert result.nsd == pytest.approx(0.95)


def test_nsd_tolerance_counts_distances_up_to_and_including_it():
    # The shifted cubes again: with a 3 mm tolerance every surface voxel counts except those sqrt(10) mm away.
    ref = cube((32, 32, 32), (10, 10, 10), (20, 20, 20))
    pred = cube((32, 32, 32), (12, 10, 11), (22, 20, 21))
    distances = surface_distances(pred > 0, ref > 0, SPACING)
    within = np.count_nonzero(distances.pred_to_ref <= 3.0) + np.count_nonzero(distances.ref_to_pred <= 3.0)
    total = distances.pred_to_ref.size + distances.ref_to_pred.size
    assert distances.nsd(3.0) == pytest.approx(within / total)
    assert distances.nsd(np.sqrt(10.0) + 1e-9) == pytest.approx(1.0)
    assert distances.nsd(0.0) < distances.nsd(1.0) < distances.nsd(3.0) < 1.0


def test_spheres_anisotropic_against_continuous_values(make_volume):
    # Concentric balls of radius 12 mm (reference) and 9 mm (prediction) on a (0.5, 1, 3) mm grid.
    # Continuous values: Dice = 2 * 9^3 / (9^3 + 12^3) = 0.5934, every surface distance = 3 mm. Voxelisation
    # moves a surface by up to half a voxel (1.5 mm along axis 2), so distances get a 1.5 mm tolerance and
    # Dice 0.05.
    shape = (64, 32, 12)
    centre = (np.asarray(shape) - 1) / 2
    grid = np.indices(shape).astype(np.float64)
    radius_mm = np.sqrt(sum(((grid[a] - centre[a]) * SPACING[a]) ** 2 for a in range(3)))
    ref, pred = radius_mm <= 12.0, radius_mm <= 9.0
    [result] = evaluate_case(make_volume(pred, SPACING), make_volume(ref, SPACING), {1: "ball"})
    assert result.dice == pytest.approx(2 * 9**3 / (9**3 + 12**3), abs=0.05)
    assert result.hd_mm == pytest.approx(3.0, abs=1.5)
    assert result.hd95_mm <= result.hd_mm
    assert result.assd_mm == pytest.approx(3.0, abs=1.0)
    # Volumes: 4/3 pi r^3 in mL, within 5 %.
    assert result.volume_ref_ml == pytest.approx(4 / 3 * np.pi * 12**3 / 1000, rel=0.05)
    assert result.volume_pred_ml == pytest.approx(4 / 3 * np.pi * 9**3 / 1000, rel=0.05)


def test_single_slice_volume_is_measured_in_2d(make_volume):
    # A (10, 10, 1) volume, spacing (1, 1, 5): reference rows/columns [2:8], prediction rows [3:8].
    # The reference row 2 is 1 mm from the prediction's row 3: Hausdorff 1 mm.
    ref = np.zeros((10, 10, 1), dtype=np.uint8)
    ref[2:8, 2:8] = 1
    pred = np.zeros_like(ref)
    pred[3:8, 2:8] = 1
    [result] = evaluate_case(
        make_volume(pred, (1.0, 1.0, 5.0)), make_volume(ref, (1.0, 1.0, 5.0)), {1: "square"}
    )
    assert result.hd_mm == pytest.approx(1.0)
    # 2D rings: reference 6x6 -> 36 - 16 = 20 pixels, prediction 5x6 -> 30 - 12 = 18 pixels.
    # d(R->P): the 6 pixels of reference row 2 are 1 mm from prediction row 3; the other 14 lie on the
    # prediction ring (0). d(P->R): prediction row 3, columns 3..6, lies inside the reference, 1 mm from
    # row 2 (4 pixels); the other 14 lie on the reference ring. ASSD = (6 + 4) / (20 + 18). (A 3D erosion
    # of the single slice would make every pixel surface and count the interiors too.)
    assert result.assd_mm == pytest.approx(10 / 38)
