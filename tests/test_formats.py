"""One table of file formats (app.formats) and one reader per format: discovery, case ids, pairing, the
evaluation's label reader and the label server agree on what a file is and how it is read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.errors import InputError
from app.evaluation.io import read_label
from app.evaluation.pairing import split_extension
from app.formats import PICTURE_SUFFIXES, SUFFIXES, file_kind, split_suffix
from app.label_server.bundles import SLICE_SUFFIXES
from app.loading.cases import file_case_id, volume_kind
from app.loading.nrrd import read_nrrd


@pytest.mark.parametrize(
    "name, kind, stem",
    [
        ("a.nii.gz", "nifti", "a"),
        ("B.NII.GZ", "nifti", "B"),
        ("c.nii", "nifti", "c"),
        ("d.nhdr", "nrrd", "d"),
        ("e.TIFF", "picture", "e"),
        ("f.dcm", "dicom", "f"),
        ("g.mha", None, None),
        (".nii", None, None),
    ],
)
def test_every_stage_reads_a_name_the_same_way(name, kind, stem):
    assert file_kind(name) == kind
    assert split_extension(Path(name)) == split_suffix(name)
    assert (split_suffix(name) or (None,))[0] == stem
    # discovery: single-file volumes only (a DICOM series is found by content, not by a .dcm name)
    assert volume_kind(Path(name)) == (None if kind == "dicom" else kind)
    if kind not in (None, "dicom"):
        assert file_case_id(Path(name)) == stem


def test_the_label_server_slices_include_every_picture_format():
    assert set(PICTURE_SUFFIXES) <= set(SLICE_SUFFIXES)
    assert [s for s, k in SUFFIXES if k == "picture"] == list(PICTURE_SUFFIXES)


def test_evaluation_and_inference_refuse_the_same_nrrd(tmp_path):
    """An NRRD without 'space directions' has no geometry: inference refused it while evaluation assumed RAS."""
    import nrrd

    path = tmp_path / "nodir.nrrd"
    nrrd.write(str(path), np.zeros((3, 4, 5), np.uint8), {"spacings": [1.0, 1.0, 1.0]})  # no space at all
    with pytest.raises(InputError, match="not supported") as by_loading:
        read_nrrd(path)
    with pytest.raises(InputError, match="not supported") as by_evaluation:
        read_label(path)
    assert by_loading.value.reason == by_evaluation.value.reason
