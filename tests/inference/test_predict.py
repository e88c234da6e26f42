"""segment(): identical to `python -m monai.bundle run`, right grid and space for DICOM, clear refusals."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from app.errors import BundleError, InputError, OutputError
from app.inference import segment
from app.loading import discover_inputs, load_volume
from app.volume import Volume

REPO_DICOM_008 = "app/demo/data/dicom/study_1/series_3"


def test_labels_identical_to_monai_bundle_run(real_bundle, loaded_real, demo_cases, tmp_path, repo_root):
    image = demo_cases / "images" / "hippocampus_008.nii.gz"
    dataset = tmp_path / "images"
    dataset.mkdir()
    (dataset / image.name).symlink_to(image)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            str(real_bundle / "configs" / "inference.json"),
            "--meta_file",
            str(real_bundle / "configs" / "metadata.json"),
            "--bundle_root",
            str(real_bundle),
            "--dataset_dir",
            str(dataset),
            "--output_dir",
            str(tmp_path / "eval"),
            "--device",
            "$torch.device('cpu')",
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = nib.load(tmp_path / "eval" / "hippocampus_008" / "hippocampus_008_seg.nii.gz")

    labels = segment(loaded_real, load_volume(image), tmp_path, name="h008")

    assert labels.space == "RAS"
    assert labels.array.shape == expected.shape
    np.testing.assert_allclose(labels.affine, expected.affine, atol=1e-5)
    assert np.array_equal(labels.array, np.asarray(expected.dataobj))
    assert set(np.unique(labels.array)) == {0, 1, 2}


def test_dicom_case_comes_back_in_lps_on_the_source_grid(loaded_real, demo_cases, tmp_path, repo_root):
    cases, _ = discover_inputs([repo_root / REPO_DICOM_008])
    source = cases[0].load()
    labels = segment(loaded_real, source, tmp_path, name=cases[0].case_id)

    assert labels.space == "LPS"
    assert labels.shape == source.shape
    np.testing.assert_array_equal(labels.affine, source.affine)
    assert labels.dicom == source.dicom
    # the same image read from NIfTI (float intensities; the DICOM holds them rounded) gives the same labels
    from_nifti = segment(loaded_real, load_volume(demo_cases / "images" / "hippocampus_008.nii.gz"), tmp_path)
    np.testing.assert_allclose(labels.in_space("RAS").affine, from_nifti.affine)
    agreement = np.mean(labels.array == from_nifti.array)
    assert agreement > 0.999, agreement


def _without(bundle, transform_type):
    from monai.transforms import Compose

    kept = [t for t in bundle.postprocessing.transforms if not isinstance(t, transform_type)]
    return dataclasses.replace(bundle, postprocessing=Compose(kept))


def test_prediction_off_the_input_grid_is_an_output_error(loaded_real, demo_cases, tmp_path):
    from monai.transforms import Invertd

    image = load_volume(demo_cases / "images" / "hippocampus_035.nii.gz")
    coarse = Volume(
        image.array, np.diag([2.0, 2.0, 2.0, 1.0]), "RAS", source="coarse.nii"
    )  # Spacingd -> 1 mm
    with pytest.raises(OutputError, match="Invertd"):
        segment(_without(loaded_real, Invertd), coarse, tmp_path)


def test_probabilities_instead_of_labels_are_a_bundle_error(loaded_real, demo_cases, tmp_path):
    from monai.transforms import AsDiscreted

    image = load_volume(demo_cases / "images" / "hippocampus_035.nii.gz")
    with pytest.raises(BundleError, match="argmax") as err:
        segment(_without(loaded_real, AsDiscreted), image, tmp_path)
    assert err.value.path.name == "inference.json"


def test_2d_image_for_a_3d_bundle_is_an_input_error(loaded_real, tmp_path):
    flat = Volume(np.zeros((16, 16), np.float32), np.eye(4), "RAS", source="slice.nii")
    with pytest.raises(InputError, match="2D image"):
        segment(loaded_real, flat, tmp_path)
