"""check_resampled_size: a small file whose voxels are far larger than the bundle's spacing is refused before
MONAI's Spacingd tries to allocate the grid, with the sizes and the limit in the reason."""

from __future__ import annotations

import numpy as np
import pytest

from app.errors import InputError
from app.inference.input_check import check_resampled_size, target_spacing
from app.volume import Volume


def test_target_spacing_is_found_in_the_bundles_preprocessing():
    from monai.transforms import Compose, EnsureChannelFirstd, NormalizeIntensityd, Spacingd

    nested = Compose([EnsureChannelFirstd("image"), Compose([Spacingd("image", (1.0, 1.5, 2.0))])])
    assert target_spacing(nested) == (1.0, 1.5, 2.0)
    assert target_spacing(Compose([NormalizeIntensityd("image")])) is None


def test_coarse_voxels_that_would_resample_past_the_limit_are_refused():
    volume = Volume(
        np.zeros((40, 40, 40), np.float32), np.diag([30.0, 30.0, 30.0, 1.0]), source="/data/coarse.nii"
    )
    with pytest.raises(InputError) as info:
        check_resampled_size(volume, (1.0, 1.0, 1.0), "hippocampus", max_bytes=4 * 2**30)
    message = str(info.value)
    assert "/data/coarse.nii" in message and "1200 x 1200 x 1200" in message and "--max-input-gib" in message
    # the same image at its own spacing, or a limit above the grid, passes
    check_resampled_size(volume, (30.0, 30.0, 30.0), "hippocampus", max_bytes=4 * 2**30)
    check_resampled_size(volume, (1.0, 1.0, 1.0), "hippocampus", max_bytes=8 * 2**30)
    check_resampled_size(volume, None, "hippocampus", max_bytes=1)
    # a pixdim <= 0 keeps that axis
    check_resampled_size(volume, (0.0, 0.0, 30.0), "hippocampus", max_bytes=40 * 40 * 40 * 4)
