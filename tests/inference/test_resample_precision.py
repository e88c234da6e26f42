"""Float32 resampling (app.inference.resample_precision): which transforms change, and that labels do not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.evaluation.overlap import count, scores
from app.inference import load_bundle, segment
from app.inference.options import InferenceOptions
from app.inference.resample_precision import resample_in_float32
from app.loading import load_volume


def test_lowers_float64_spacing_only():
    from monai.transforms import Compose, NormalizeIntensityd, Spacing, Spacingd

    default = Spacingd("image", pixdim=(1.0, 1.0, 1.0))  # MONAI's float64 default
    mixed = Spacingd(["image", "label"], pixdim=(1.0, 1.0, 1.0), dtype=(np.float64, np.float16))
    single = Spacing(pixdim=(1.0, 1.0, 1.0), dtype=torch.float64)
    kept = Spacingd("image", pixdim=(1.0, 1.0, 1.0), dtype=np.float32)
    pipeline = Compose([default, Compose([mixed, NormalizeIntensityd("image")]), single, kept])

    assert resample_in_float32(pipeline) == 3
    assert default.dtype == (torch.float32,)
    assert mixed.dtype == (torch.float32, np.float16)  # lower precision than float32 is the bundle's choice
    assert single.sp_resample.dtype == torch.float32
    assert kept.dtype == (np.float32,)
    assert resample_in_float32(pipeline) == 0  # idempotent


def test_no_spacing_nothing_changed():
    from monai.transforms import Compose, NormalizeIntensityd

    assert resample_in_float32(Compose([NormalizeIntensityd("image")])) == 0


@pytest.fixture(scope="module")
def anisotropic_case(demo_cases):
    """A real hippocampus MRI given 0.8 x 1.25 x 1.5 mm voxels, so that Spacingd resamples it both ways."""
    volume = load_volume(demo_cases / "images" / "hippocampus_008.nii.gz")
    affine = volume.affine.copy()
    affine[:3, :3] = affine[:3, :3] @ np.diag([0.8, 1.25, 1.5])
    return volume.with_array(volume.array, affine=affine)


def test_float32_resampling_keeps_the_labels(real_bundle, loaded_real, anisotropic_case, tmp_path):
    lean = load_bundle(real_bundle, InferenceOptions(device="cpu", resample_float32=True))
    assert lean.runtime.resample_dtype == "float32"
    assert loaded_real.runtime.resample_dtype == "bundle"

    exact = segment(loaded_real, anisotropic_case, tmp_path, name="f64")
    fast = segment(lean, anisotropic_case, tmp_path, name="f32")

    assert fast.shape == exact.shape == anisotropic_case.shape
    np.testing.assert_array_equal(fast.affine, exact.affine)
    assert {1, 2} <= set(np.unique(exact.array).tolist())
    differing = int(np.count_nonzero(fast.array != exact.array))
    assert differing <= 0.001 * exact.array.size, f"{differing} of {exact.array.size} voxels differ"
    for label in (1, 2):
        dice = scores(count(fast.array == label, exact.array == label))["dice"]
        assert dice >= 0.999, (label, dice)
