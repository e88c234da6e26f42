"""Fixtures for the evaluation tests: real hippocampus labels and small synthetic volumes."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from app.volume import Volume


@pytest.fixture(scope="session")
def hippocampus_labels(shared_data: Path) -> Path:
    folder = shared_data / "msd-hippocampus" / "labelsTr"
    if not folder.is_dir():
        pytest.skip(f"hippocampus labels not found at {folder}")
    return folder


def _volume(array: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), source: str = "") -> Volume:
    """A RAS volume with an axis-aligned affine of the given spacing (2D arrays use the first two)."""
    affine = np.diag([*spacing, 1.0]) if len(spacing) == 3 else np.diag([*spacing, 1.0, 1.0])
    affine[: len(origin), 3] = origin
    return Volume(array=np.asarray(array), affine=affine, space="RAS", source=source)


def _save_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array), np.eye(4) if affine is None else affine), str(path))
    return path


@pytest.fixture
def make_volume():
    """``make_volume(array, spacing=(1, 1, 1), origin=(0, 0, 0), source="")``: an axis-aligned RAS Volume."""
    return _volume


@pytest.fixture
def save_nifti():
    """``save_nifti(path, array, affine=identity)``: write a NIfTI file (folders created), return the path."""
    return _save_nifti
