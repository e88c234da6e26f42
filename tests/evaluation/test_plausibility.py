"""Plausibility flags and input warnings with the ranges shipped in the real bundles' metadata, on real cases:
a validation case as labelled (no flag), its label emptied, inflated or split, an EM slice with its membrane
removed, and a whole-head MR slab given to the hippocampus-crop bundle (issue 18 item 5)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from app.bundle_metadata import read_metadata
from app.bundle_ranges import read_ranges
from app.evaluation.plausibility import input_warnings, label_flags
from app.evaluation.statistics import case_statistics
from app.loading.load import load_volume
from app.loading.picture import read_picture

NAMES = {1: "anterior", 2: "posterior"}


@pytest.fixture(scope="module")
def hippo_ranges(repo_root):
    ranges = read_ranges(read_metadata(repo_root / "bundles" / "hippocampus_mri_segmentation"))
    assert ranges is not None and ranges.n_cases == 168
    return ranges


@pytest.fixture(scope="module")
def validation_case(repo_root, shared_data):
    """The first validation case of the bundle's datalist (not among the cases the ranges came from)."""
    datalist = json.loads(
        (repo_root / "bundles" / "hippocampus_mri_segmentation" / "configs" / "datalist.json").read_text()
    )
    item = datalist["validation"][0]
    root = shared_data / "msd-hippocampus"
    image = load_volume(root / item["image"])
    labels = np.asarray(nib.load(root / item["label"]).dataobj).astype(np.uint8)
    return image, labels


def _codes(image, labels, ranges):
    stats = case_statistics(image, image.with_array(labels), NAMES)
    return {(f.subject, f.code) for f in label_flags(stats, ranges, expected=NAMES)}


def test_the_reference_label_of_a_validation_case_raises_no_flag(validation_case, hippo_ranges):
    image, labels = validation_case
    assert _codes(image, labels, hippo_ranges) == set()
    assert input_warnings(image, hippo_ranges) == []


def test_an_emptied_label_is_flagged_even_without_ranges(validation_case, hippo_ranges):
    image, labels = validation_case
    emptied = np.where(labels == 2, 0, labels).astype(np.uint8)
    assert _codes(image, emptied, hippo_ranges) == {("posterior", "empty")}
    assert _codes(image, emptied, None) == {("posterior", "empty")}


def test_an_inflated_label_is_flagged_for_volume(validation_case, hippo_ranges):
    image, labels = validation_case
    inflated = labels.copy()
    inflated[ndimage.binary_dilation(labels == 1, iterations=3) & (labels == 0)] = 1
    assert ("anterior", "volume") in _codes(image, inflated, hippo_ranges)
    assert _codes(image, inflated, None) == set()  # no ranges, no range flags


def test_a_stray_component_is_flagged(validation_case, hippo_ranges):
    image, labels = validation_case
    split = labels.copy()
    split[:2, :2, :2] = 2
    assert _codes(image, split, hippo_ranges) == {("posterior", "components")}


def test_em_slice_without_membrane_is_flagged(repo_root, shared_data):
    ranges = read_ranges(read_metadata(repo_root / "bundles" / "em_membrane_segmentation"))
    root = shared_data / "isbi2012-em" / "train"
    image = read_picture(root / "image" / "21.png")  # a validation slice
    cells = (np.asarray(read_picture(root / "label" / "21.png", label=True).array) > 127).astype(np.uint8)
    names = {0: "membrane", 1: "cell"}

    def codes(values):
        stats = case_statistics(image, image.with_array(values), names, cell_label=1)
        return {f.code for f in label_flags(stats, ranges, expected=names)}

    assert codes(cells) == set()
    merged = np.ones_like(cells)  # every membrane lost: one cell
    assert {"empty", "cells", "membrane_fraction"} <= codes(merged)


def test_whole_head_slab_warns_about_field_of_view(hippo_ranges, shared_data):
    slab = load_volume(shared_data / "dicom2nifti-suite" / "siemens" / "anatomical" / "001")
    assert slab.shape[:2] == (256, 256)
    warnings = input_warnings(slab, hippo_ranges)
    assert any("field of view" in w for w in warnings), warnings
