"""Per-label statistics of a label map against an independent numpy/nibabel/skimage computation on real cases:
an isotropic MR crop, an anisotropic CT (HU), the same MR case on a doubly oblique LPS grid, and EM pictures."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from skimage import measure

from app.evaluation.statistics import CaseStatistics, case_statistics
from app.loading.load import load_volume
from app.loading.picture import read_picture
from app.volume import Volume


def _expected(image: np.ndarray, labels: np.ndarray, value: int, affine_ras: np.ndarray) -> dict:
    """Everything by brute force: every voxel centre through the affine, skimage for the components."""
    mask = labels == value
    ijk = np.argwhere(mask).astype(float)
    world = nib.affines.apply_affine(affine_ras, ijk)
    components = measure.label(mask, connectivity=mask.ndim)
    sizes = np.bincount(components.ravel())[1:]
    inside = image[mask].astype(float)
    return {
        "voxels": int(mask.sum()),
        "volume_ml": mask.sum() * abs(np.linalg.det(affine_ras[:3, :3])) / 1000,
        "components": int(components.max()),
        "share": sizes.max() / mask.sum(),
        "centroid": world.mean(axis=0),
        "bbox_min": world.min(axis=0),
        "bbox_max": world.max(axis=0),
        "intensity": (inside.mean(), inside.std(), np.median(inside), *np.percentile(inside, [5, 95])),
    }


def _check(stats: CaseStatistics, expected: dict, name: str) -> None:
    s = stats.label(name)
    assert s is not None
    assert s.voxels == expected["voxels"]
    assert s.volume_ml == pytest.approx(expected["volume_ml"], rel=1e-9)
    assert s.components == expected["components"]
    assert s.largest_component_share == pytest.approx(expected["share"])
    for key in ("centroid", "bbox_min", "bbox_max"):
        assert np.allclose(getattr(s, f"{key}_ras_mm"), expected[key], atol=2e-3), key
    mean, std, median, p5, p95 = expected["intensity"]
    assert s.intensity is not None
    assert (s.intensity.mean, s.intensity.std, s.intensity.median) == pytest.approx(
        (mean, std, median), rel=1e-6
    )
    assert (s.intensity.p5, s.intensity.p95) == pytest.approx((p5, p95), rel=1e-6)


def test_isotropic_mr_case_matches_brute_force(shared_data):
    root = shared_data / "msd-hippocampus"
    image = load_volume(root / "imagesTr" / "hippocampus_001.nii.gz")
    labels = nib.load(root / "labelsTr" / "hippocampus_001.nii.gz")
    label_array = np.asarray(labels.dataobj).astype(np.uint8)
    stats = case_statistics(image, image.with_array(label_array), {1: "anterior", 2: "posterior"})
    raw = np.asarray(nib.load(root / "imagesTr" / "hippocampus_001.nii.gz").dataobj, dtype=float)
    for value, name in ((1, "anterior"), (2, "posterior")):
        _check(stats, _expected(raw, label_array, value, labels.affine), name)
    assert stats.space == "RAS"


def test_anisotropic_ct_case_in_hounsfield_units(shared_data):
    root = shared_data / "msd-spleen-crop"
    image = load_volume(root / "imagesTr" / "spleen_2_crop.nii.gz")
    nii = nib.load(root / "labelsTr" / "spleen_2_crop.nii.gz")
    assert np.allclose(nii.header.get_zooms(), (0.795, 0.795, 5.0), atol=1e-3)  # the anisotropic case
    label_array = np.asarray(nii.dataobj).astype(np.uint8)
    stats = case_statistics(image, image.with_array(label_array), {1: "spleen"}, intensity_unit="HU")
    hu = nib.load(root / "imagesTr" / "spleen_2_crop.nii.gz").get_fdata()
    expected = _expected(hu, label_array, 1, nii.affine)
    _check(stats, expected, "spleen")
    # a spleen is soft tissue: its mean HU lies between fat and bone (a check on units, not only on arithmetic)
    assert 0 < stats.label("spleen").intensity.mean < 200
    assert stats.intensity_unit == "HU"


def test_oblique_lps_grid_is_reported_in_ras(shared_data):
    """The real MR case on a doubly oblique, anisotropic LPS grid (as a DICOM series would give it)."""
    root = shared_data / "msd-hippocampus"
    raw = np.asarray(nib.load(root / "imagesTr" / "hippocampus_003.nii.gz").dataobj, dtype=np.float32)
    label_array = np.asarray(nib.load(root / "labelsTr" / "hippocampus_003.nii.gz").dataobj).astype(np.uint8)
    a, b = np.deg2rad(25), np.deg2rad(-40)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    lps = np.eye(4)
    lps[:3, :3] = rz @ rx @ np.diag([0.7, 0.9, 2.5])
    lps[:3, 3] = (-31.0, 12.5, 80.0)
    image = Volume(raw, lps, space="LPS", source="oblique")
    stats = case_statistics(image, image.with_array(label_array), {1: "anterior", 2: "posterior"})
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # written out here, not taken from app.volume
    for value, name in ((1, "anterior"), (2, "posterior")):
        _check(stats, _expected(raw, label_array, value, ras), name)


def test_components_and_an_empty_label(shared_data):
    root = shared_data / "msd-hippocampus"
    image = load_volume(root / "imagesTr" / "hippocampus_004.nii.gz")
    label_array = np.asarray(nib.load(root / "labelsTr" / "hippocampus_004.nii.gz").dataobj).astype(np.uint8)
    label_array[label_array == 2] = 0
    label_array[:3, :3, :3] = 1  # a second anterior component in a corner, 27 voxels
    stats = case_statistics(image, image.with_array(label_array), {1: "anterior", 2: "posterior"})
    _check(stats, _expected(np.asarray(image.array, float), label_array, 1, image.affine), "anterior")
    assert stats.label("anterior").components == 2
    empty = stats.label("posterior")
    assert (empty.voxels, empty.components, empty.centroid_ras_mm, empty.intensity) == (0, 0, None, None)
    assert CaseStatistics.from_dict(stats.to_dict()) == stats


def test_em_membrane_fraction_and_cells(shared_data):
    root = shared_data / "isbi2012-em" / "train"
    image = read_picture(root / "image" / "3.png")
    label = read_picture(root / "label" / "3.png", label=True)
    cells = (np.asarray(label.array) > 127).astype(np.uint8)
    stats = case_statistics(image, image.with_array(cells), {0: "membrane", 1: "cell"}, cell_label=1)
    regions = measure.label(cells, connectivity=1)
    areas = np.bincount(regions.ravel())[1:]
    assert stats.cells is not None
    assert stats.cells.membrane_fraction == pytest.approx((cells == 0).mean())
    assert stats.cells.cells == regions.max() > 50
    assert stats.cells.cell_area_median_px == pytest.approx(np.median(areas))
    assert stats.cells.cell_area_p95_px == pytest.approx(np.percentile(areas, 95))
    assert stats.label("membrane").voxels == int((cells == 0).sum())
    assert stats.label("membrane").volume_ml is None  # pictures have no physical voxel size
