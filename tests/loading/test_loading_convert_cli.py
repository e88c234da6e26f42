"""``unetseg convert``: the reader's volume in RAS, written as NIfTI atomically; errors map to exit code 2."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from app.cli.main import main
from app.loading import load_volume


def test_convert_dicom_series_round_trip(write_series, tmp_path: Path, capsys) -> None:
    files = write_series(
        "series",
        3,
        orientation=(2 / 3, 2 / 3, 1 / 3, -2 / 3, 1 / 3, 2 / 3),
        pixel_spacing=(0.5, 0.8),
        slope=1,
        intercept=-1024,
    )
    out = tmp_path / "out" / "ct.nii.gz"
    assert main(["convert", str(files[0].parent), str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    written = nib.load(out)
    expected = load_volume(files[0].parent).in_space("RAS")
    np.testing.assert_allclose(written.affine, expected.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(written.dataobj), expected.array)
    assert int(written.header["sform_code"]) == 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["ct.nii.gz"]  # no temporary file left behind


def test_convert_refusal_exit_code(d2n: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "tilt.nii.gz"
    assert main(["convert", str(d2n / "failing/gantrytilting/001"), str(out)]) == 2
    assert "gantry tilt" in capsys.readouterr().err
    assert not out.exists()


def test_convert_needs_one_series(write_series, tmp_path: Path, capsys) -> None:
    write_series("tree/a", 2, modality="MR", description="T1")
    write_series("tree/b", 2, modality="MR", description="T2")
    out = tmp_path / "one.nii.gz"
    assert main(["convert", str(tmp_path / "tree"), str(out)]) == 2
    assert "2 volumes found" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "tree"), str(out), "--filter", "SeriesDescription=t2"]) == 0
    assert nib.load(out).shape == (6, 8, 2)
