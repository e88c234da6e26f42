"""The preview of a real case shows each label where the label is: the PNG is read back, the overlay pixels
found (saturated pixels: the image is grey, the letters white on black) and their centre compared, per panel,
with the label's position projected by hand in the radiological display convention."""

from __future__ import annotations

import io

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from app.loading.load import load_volume
from app.reporting.preview import preview_png

NAMES = {1: "anterior", 2: "posterior"}


def _read(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _panels(png_black: np.ndarray) -> list[tuple[slice, slice]]:
    """The three image panels: the three largest black regions of a preview of an all-black image."""
    black = png_black.sum(axis=2) < 30
    regions, _ = ndimage.label(black)
    sizes = np.bincount(regions.ravel())
    sizes[0] = 0
    largest = np.argsort(sizes)[::-1][:3]
    boxes = ndimage.find_objects(regions)
    return sorted((boxes[i - 1] for i in largest), key=lambda box: box[1].start)


@pytest.fixture(scope="module")
def case(shared_data):
    root = shared_data / "msd-hippocampus"
    image = load_volume(root / "imagesTr" / "hippocampus_011.nii.gz")
    labels = np.asarray(nib.load(root / "labelsTr" / "hippocampus_011.nii.gz").dataobj).astype(np.uint8)
    assert np.allclose(image.affine[:3, :3], np.eye(3))  # RAS-aligned: array axes are x (R), y (A), z (S)
    return image, labels


def test_overlay_is_over_the_structure_in_each_plane(case):
    image, labels = case
    with_labels = _read(preview_png(image, image.with_array(labels), NAMES, modality="MR"))
    # the panels' places do not depend on the slices shown: find them on a preview of a black image
    black = _read(
        preview_png(image.with_array(np.zeros_like(image.array)), image.with_array(labels * 0), NAMES)
    )
    assert with_labels.shape == black.shape
    panels = _panels(black)
    inside = np.zeros(black.shape[:2], dtype=bool)
    for box in panels:
        inside[box] = True
    red = inside & (with_labels[..., 0] > with_labels[..., 2] + 60)  # anterior: red
    blue = inside & (with_labels[..., 2] > with_labels[..., 0] + 60)  # posterior: blue
    assert red.sum() > 500 and blue.sum() > 500

    centre = np.round(np.argwhere(labels > 0).mean(axis=0)).astype(int)  # the planes go through here
    n = np.array(labels.shape)
    # (panel index, sliced axis, column axis, row axis): radiological, patient right on the left, A/S up
    for index, axis, col_axis, row_axis in ((0, 2, 0, 1), (1, 1, 0, 2), (2, 0, 1, 2)):
        rows, cols = panels[index]
        for value, found in ((1, red), (2, blue)):
            plane = np.take(labels, centre[axis], axis=axis) == value
            if plane.sum() < 10:
                continue
            voxels = np.argwhere(plane)  # columns: the two remaining axes in increasing order
            mean = voxels.mean(axis=0)
            a_col, a_row = (0, 1) if col_axis < row_axis else (1, 0)
            expect_x = 1 - (mean[a_col] + 0.5) / n[col_axis]  # columns flipped: + direction to the left
            expect_y = 1 - (mean[a_row] + 0.5) / n[row_axis]  # rows flipped: + direction up
            ys, xs = np.nonzero(found[rows, cols])
            got_x = (xs.mean() + 0.5) / (cols.stop - cols.start)
            got_y = (ys.mean() + 0.5) / (rows.stop - rows.start)
            assert got_x == pytest.approx(expect_x, abs=0.04), (index, value)
            assert got_y == pytest.approx(expect_y, abs=0.04), (index, value)


def test_anterior_is_above_posterior_in_the_axial_plane(case):
    """The check above is only worth something if a flip would fail it: here, anterior is drawn up."""
    image, labels = case
    png = _read(preview_png(image, image.with_array(labels), NAMES, modality="MR"))
    black = preview_png(image.with_array(np.zeros_like(image.array)), image.with_array(labels * 0), NAMES)
    rows, cols = _panels(_read(black))[0]
    panel = png[rows, cols]
    red_rows = np.nonzero((panel[..., 0] > panel[..., 2] + 60) & (panel[..., 1] < 120))[0]
    blue_rows = np.nonzero((panel[..., 2] > panel[..., 0] + 60) & (panel[..., 1] < 150))[0]
    assert red_rows.mean() < blue_rows.mean()


def test_em_picture_preview_has_the_membrane_overlay(shared_data):
    from app.loading.picture import read_picture

    root = shared_data / "isbi2012-em" / "train"
    image = read_picture(root / "image" / "0.png")
    cells = (np.asarray(read_picture(root / "label" / "0.png", label=True).array) > 127).astype(np.uint8)
    png = _read(preview_png(image, image.with_array(cells), {0: "membrane"}, modality="EM", picture=True))
    red = (png[..., 0] > png[..., 2] + 60) & (png[..., 0] > png[..., 1] + 60)
    # membrane is about a fifth of the slice; red covers a comparable share of the picture area
    assert 0.05 < red.mean() < 0.4
