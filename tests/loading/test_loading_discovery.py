"""Discovery in a cluttered tree: grouping, non-image objects, localizers, rules, decisions, case ids, no PHI."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from app.errors import InputError
from app.loading import discover_inputs, load_volume
from app.loading.cases import short_hash
from app.loading.dicom.discover import discover_series
from app.loading.walk import walk_files


@pytest.fixture
def tree(tmp_path: Path, write_series, slice_writer) -> dict[str, object]:
    """Two studies: an MR study (T1, T2, a SEG, a localizer, an orthogonal scout slice) and a CT study."""
    mr_study, ct_study = generate_uid(), generate_uid()
    t1_uid, t2_uid, ct_uid = generate_uid(), generate_uid(), generate_uid()
    write_series(
        "in/patient/mr/t1",
        4,
        modality="MR",
        series_number=3,
        description="Ax T1 MPRAGE",
        study_uid=mr_study,
        series_uid=t1_uid,
    )
    # a scout slice in the T1 series, orthogonal to the other 4 (sagittal)
    slice_writer(
        Path(tmp_path, "in/patient/mr/t1/scout.dcm"),
        np.zeros((8, 6), np.int16),
        position=(0, 0, 0),
        orientation=(0, 1, 0, 0, 0, -1),
        modality="MR",
        series_number=3,
        study_uid=mr_study,
        series_uid=t1_uid,
    )
    write_series(
        "in/patient/mr/t2",
        3,
        modality="MR",
        series_number=4,
        description="Ax T2 TSE",
        study_uid=mr_study,
        series_uid=t2_uid,
    )
    write_series(
        "in/patient/mr/loc",
        3,
        modality="MR",
        series_number=1,
        description="localizer",
        image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        study_uid=mr_study,
    )
    write_series(
        "in/patient/mr/seg",
        1,
        modality="SEG",
        series_number=100,
        study_uid=mr_study,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.66.4",
    )
    write_series(
        "in/patient/ct/deep/er/series",
        5,
        modality="CT",
        series_number=2,
        description="Abdomen",
        study_uid=ct_study,
        series_uid=ct_uid,
    )
    # a media directory object under another name (recognised by its SOP Class, not its file name)
    write_series("in/INDEX", 1, sop_class_uid="1.2.840.10008.1.3.10", modality="OT")
    # clutter: a DICOMDIR, text, a non-DICOM binary, hidden files and a hidden folder holding DICOM
    root = tmp_path / "in"
    (root / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 32)
    (root / "README.txt").write_text("exported by PACS\n")
    (root / "patient" / "notes").write_text("no extension, not DICOM")
    (root / "patient" / "thumb.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    (root / ".DS_Store").write_bytes(bytes(300))
    hidden = write_series(".hidden/copy", 2, modality="MR")
    (root / ".cache").mkdir()
    hidden[0].rename(root / ".cache" / "x.dcm")
    return {
        "root": root,
        "t1": t1_uid,
        "t2": t2_uid,
        "ct": ct_uid,
        "mr_study": mr_study,
        "ct_study": ct_study,
    }


def test_tree_groups_series_and_skips_clutter(tree, caplog, patient_identifiers) -> None:
    caplog.set_level(logging.DEBUG, logger="app.loading")
    series, decisions = discover_series(walk_files([tree["root"]]))
    assert {s.series_instance_uid for s in series} == {tree["t1"], tree["t2"], tree["ct"]}
    by_uid = {s.series_instance_uid: s for s in series}
    assert len(by_uid[tree["t1"]].instances) == 4  # scout dropped
    assert len(by_uid[tree["ct"]].instances) == 5
    assert all(".cache" not in str(h.path) for s in series for h in s.instances)

    skipped = {(d.subject, Path(d.path).name): d.reason for d in decisions if d.action == "skipped"}
    assert "orthogonal" in skipped[("file", "scout.dcm")]
    assert skipped[("series", "loc")] == "localizer series (ImageType LOCALIZER)"
    assert "Segmentation (SEG)" in skipped[("series", "seg")]
    assert "DICOMDIR (Media Storage Directory)" in skipped[("series", "INDEX")]
    assert not any(name in ("README.txt", "notes", "thumb.jpg", "DICOMDIR") for _, name in skipped)
    taken = [d for d in decisions if d.action == "taken"]
    assert len(taken) == 3 and all(d.case_id for d in taken)
    assert "not a DICOM file" in caplog.text  # clutter only at debug level
    for identifier in patient_identifiers:
        assert identifier not in caplog.text
        assert not any(identifier in str(d) for d in decisions)


@pytest.mark.parametrize(
    ("modality", "filters", "expected"),
    [
        (None, ["Modality=MR"], {"t1", "t2"}),
        (None, ["modality=mr"], None),  # keyword must be spelled as in DICOM
        ("MR", ["SeriesDescription~t1"], {"t1"}),
        ("CT", [], {"ct"}),
        (None, ["SeriesDescription~^Ax", "SeriesNumber=4"], {"t2"}),
        (None, ["ImageType=AXIAL", "Modality=CT"], {"ct"}),
    ],
)
def test_selection_rules(tree, modality, filters, expected) -> None:
    files = list(walk_files([tree["root"]]))
    if expected is None:
        with pytest.raises(InputError, match="not a DICOM keyword"):
            discover_series(files, modality=modality, filters=filters)
        return
    series, decisions = discover_series(files, modality=modality, filters=filters)
    assert {s.series_instance_uid for s in series} == {tree[name] for name in expected}
    reasons = " | ".join(d.reason for d in decisions if d.action == "skipped" and d.subject == "series")
    if modality:
        assert f"is not the required {modality}" in reasons
    if filters:
        assert "not matched" in reasons


def test_filters_on_patient_identifiers_are_refused() -> None:
    with pytest.raises(InputError, match="patient identifiers"):
        discover_series([], filters=["PatientName~Doe"])
    with pytest.raises(InputError, match="expected Key=Value"):
        discover_series([], filters=["SeriesDescription"])


def test_dicom_case_id_scheme(tree) -> None:
    cases, _ = discover_inputs([tree["root"]])
    ids = {c.series.series_instance_uid: c.case_id for c in cases if c.series}
    assert ids[tree["t1"]] == f"{short_hash(tree['mr_study'])}_3_{short_hash(tree['t1'])}"
    assert ids[tree["ct"]] == f"{short_hash(tree['ct_study'])}_2_{short_hash(tree['ct'])}"
    for case_id in ids.values():
        assert re.fullmatch(r"[0-9a-f]{8}_\d+_[0-9a-f]{8}", case_id)


def test_discover_inputs_mixes_nifti_and_dicom(tree, tmp_path: Path, shared_data: Path) -> None:
    nifti_dir = tmp_path / "nifti"
    nifti_dir.mkdir()
    for name in ("case 1.nii.gz", "sub/case 1.nii.gz"):
        (nifti_dir / name).parent.mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(np.zeros((3, 4, 5), np.int16), np.diag([2, 2, 2, 1])), nifti_dir / name)
    nrrd = shared_data / "dcmqi-seg" / "liver_seg.nrrd"
    cases, decisions = discover_inputs([nifti_dir, nrrd, tree["root"] / "patient" / "mr"], modality="MR")
    from app.loading.cases import short_hash

    assert [c.case_id for c in cases[:3]] == [
        f"case_1-{short_hash('nifti/case 1.nii.gz')}",
        f"case_1-{short_hash('nifti/sub/case 1.nii.gz')}",
        "liver_seg",
    ]
    assert [c.kind for c in cases] == ["nifti", "nifti", "nrrd", "dicom", "dicom"]
    assert cases[0].load().shape == (3, 4, 5)
    volume = cases[3].load()
    assert volume.space == "LPS" and volume.shape[2] in (3, 4)
    assert sum(d.action == "taken" for d in decisions) == 5


def test_discover_inputs_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        discover_inputs([tmp_path / "nope"])


def test_load_volume_needs_exactly_one_series(tree) -> None:
    with pytest.raises(InputError, match="3 image series found"):
        load_volume(tree["root"])
    volume = load_volume(tree["root"], modality="MR", filters=["SeriesDescription~T2"])
    assert volume.shape == (6, 8, 3)
    with pytest.raises(InputError, match="no usable DICOM image series: localizer series"):
        load_volume(tree["root"] / "patient" / "mr" / "loc")
    empty = tree["root"].parent / "text_only"
    empty.mkdir()
    (empty / "a.txt").write_text("hello")
    with pytest.raises(InputError, match=r"no usable DICOM image series \(no DICOM files found\)"):
        load_volume(empty)


def test_blank_uids_are_grouped_by_folder(write_series) -> None:
    files = write_series("anon/a", 3, study_uid="", series_uid="")
    files += write_series("anon/b", 2, study_uid="", series_uid="")
    for f in files:  # pydicom refuses to write empty UIDs through the constructor above
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID = ds.SeriesInstanceUID = ""
        ds.save_as(f)
    series, _ = discover_series(files)
    assert sorted(len(s.instances) for s in series) == [2, 3]


def _nifti(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((3, 4, 5), np.int16), np.eye(4)), path)
    return path


def test_a_case_id_does_not_depend_on_which_other_files_exist(tmp_path: Path) -> None:
    from app.loading.cases import short_hash

    """site_b/case and site_c/case keep their ids when site_a/case arrives (it sorts first): with ids numbered
    in discovery order, --resume gave site_a site_b's mask and --shard lost a case."""
    for site in ("site_b", "site_c"):
        _nifti(tmp_path / "in" / site / "case.nii.gz")
    before = {c.source.parent.name: c.case_id for c in discover_inputs([tmp_path / "in"])[0]}
    _nifti(tmp_path / "in" / "site_a" / "case.nii.gz")
    after = {c.source.parent.name: c.case_id for c in discover_inputs([tmp_path / "in"])[0]}
    assert before.items() <= after.items()
    assert len(set(after.values())) == 3
    assert after["site_a"] == f"case-{short_hash('in/site_a/case.nii.gz')}"
    # given one folder each, in any order: distinct ids, the same in every order
    sites = [tmp_path / "in" / site for site in ("site_c", "site_a", "site_b")]
    one = {c.source.parent.name: c.case_id for c in discover_inputs(sites)[0]}
    other = {c.source.parent.name: c.case_id for c in discover_inputs(sites[::-1])[0]}
    assert one == other and len(set(one.values())) == 3
    assert one["site_a"] == f"case-{short_hash('site_a/case.nii.gz')}"


def test_another_name_for_one_file_is_a_decision_and_the_same_path_again_is_silent(tmp_path: Path) -> None:
    real = _nifti(tmp_path / "in" / "sub-01" / "T1w.nii.gz")
    (tmp_path / "in" / "sub-02").mkdir()
    (tmp_path / "in" / "sub-02" / "T1w.nii.gz").symlink_to(real)
    cases, decisions = discover_inputs([tmp_path / "in", real])
    assert len(cases) == 1
    (linked,) = [d for d in decisions if d.action == "skipped"]
    assert linked.path.endswith("sub-02/T1w.nii.gz") and str(real) in linked.reason


def test_the_runs_out_folder_inside_an_input_is_not_input(tmp_path: Path) -> None:
    _nifti(tmp_path / "in" / "a.nii.gz")
    _nifti(tmp_path / "in" / "out" / "a" / "a_seg.nii.gz")  # an earlier run's output
    cases, decisions = discover_inputs([tmp_path / "in"], exclude=[tmp_path / "in" / "out"])
    assert [c.case_id for c in cases] == ["a"]
    (left_out,) = [d for d in decisions if d.subject == "folder"]
    assert left_out.action == "skipped" and left_out.n_files == 1 and "output folder" in left_out.reason
