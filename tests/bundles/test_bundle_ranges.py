"""The ranges shipped in both bundles' metadata are what scripts/bundle_ranges.py computes from their training
cases today (so a change of data or of the statistics shows up here), and the reader accepts them."""

from __future__ import annotations

import importlib.util
import json

import pytest

from app.bundle_ranges import RANGES_KEY, read_ranges


@pytest.fixture(scope="module")
def script(repo_root):
    spec = importlib.util.spec_from_file_location(
        "bundle_ranges_script", repo_root / "scripts" / "bundle_ranges.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("bundle", "data", "n_cases"),
    [
        ("hippocampus_mri_segmentation", "msd-hippocampus", 168),
        ("em_membrane_segmentation", "isbi2012-em", 18),
    ],
)
def test_shipped_ranges_are_reproduced_from_the_training_cases(
    script, repo_root, shared_data, bundle, data, n_cases
):
    folder = repo_root / "bundles" / bundle
    shipped = json.loads((folder / "configs" / "metadata.json").read_text())[RANGES_KEY]
    computed = script.compute_ranges(folder, shared_data / data)
    assert computed == shipped
    ranges = read_ranges({RANGES_KEY: shipped})
    assert ranges.n_cases == n_cases
    if bundle.startswith("hippocampus"):
        assert ranges.labels["anterior"].components_max == 1
        assert 0.5 < ranges.labels["anterior"].volume_ml.low < ranges.labels["anterior"].volume_ml.high < 5
        assert ranges.inputs.fov_mm is not None and ranges.inputs.spacing_mm is not None
    else:
        assert ranges.cells is not None and 0.1 < ranges.cells.membrane_fraction.low < 0.4
        assert ranges.inputs.fov_mm is None  # pictures have no physical size
