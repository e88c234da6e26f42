"""`unetseg demo` end to end on the embedded DICOM tree with the real model: NIfTI and SEG line up, Dice holds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.demo.dicom_tree import DEMO_SERIES, PATIENT_ID, PATIENT_NAME, build_demo_tree
from app.loading import load_volume
from app.loading.nifti import read_nifti
from app.loading.seg import read_dicom_seg

#: golden tolerance: the shipped model scores about 0.84-0.90 on these validation cases
MIN_DICE = 0.75


def test_demo_succeeds_and_prints_a_summary(demo_run):
    code, stdout, out = demo_run
    assert code == 0, stdout
    for series in DEMO_SERIES:
        assert series.case in stdout and series.case_id in stdout
    assert "mean Dice" in stdout and "report.json" in stdout
    for name in ("report.json", "report.csv", "metrics.csv", "summary.json", "report.html"):
        assert (out / name).is_file(), name


@pytest.mark.parametrize("series", DEMO_SERIES, ids=lambda s: s.case)
def test_seg_and_nifti_outputs_line_up(demo_run, demo_data, series):
    _, _, out = demo_run
    case_dir = out / series.case_id
    seg, segments = read_dicom_seg(case_dir / f"{series.case_id}_seg.dcm")
    nifti = read_nifti(case_dir / f"{series.case_id}_seg.nii.gz").in_space("LPS")
    source = load_volume(demo_data / "dicom" / series.folder)

    assert segments == {1: "anterior", 2: "posterior"}
    assert seg.meta["dicom_seg"]["referenced_series_instance_uids"] == [series.series_instance_uid]
    assert seg.meta["dicom_seg"]["segments"][1]["type"][2] == "Hippocampus"  # label_context from the bundle
    assert seg.shape == nifti.shape == source.shape
    np.testing.assert_allclose(seg.affine, nifti.affine, atol=1e-4)
    np.testing.assert_allclose(seg.affine, source.affine, atol=1e-4)
    assert np.array_equal(seg.array, nifti.array)
    half_voxel = 0.5 * float(source.spacing.min())
    for label in (1, 2):
        assert (seg.array == label).any()
        from_seg = seg.world_coordinates(np.argwhere(seg.array == label)).mean(axis=0)
        from_nifti = nifti.world_coordinates(np.argwhere(nifti.array == label)).mean(axis=0)
        assert np.linalg.norm(from_seg - from_nifti) < half_voxel


def test_demo_dice_against_ground_truth(demo_run):
    _, _, out = demo_run
    report = json.loads((out / "report.json").read_text())
    evaluation = report["evaluation"]
    assert evaluation["ok"] and not evaluation["failures"]
    assert set(evaluation["dice"]) == {s.case_id for s in DEMO_SERIES}
    for case_id, scores in evaluation["dice"].items():
        assert set(scores) == {"anterior", "posterior"}
        assert min(scores.values()) > MIN_DICE, (case_id, scores)


def test_demo_report_has_series_decisions_and_no_patient_data(demo_run):
    _, _, out = demo_run
    report = json.loads((out / "report.json").read_text())
    assert report["counts"] == {"cases": 3, "ok": 3, "partial": 0, "skipped": 0, "failed": 0, "pending": 0}
    uids = {c["series"]["series_instance_uid"] for c in report["cases"]}
    assert uids == {s.series_instance_uid for s in DEMO_SERIES}
    assert all(c["seg"]["source_series_instance_uid"] in uids for c in report["cases"])
    assert sum(d["action"] == "taken" for d in report["discovery"]) == 3
    assert report["provenance"]["options"]["modality"] == "MR"  # from the bundle metadata
    for path in [out / "report.json", out / "report.csv", *out.rglob("case.json")]:
        text = path.read_text()
        assert PATIENT_NAME not in text and PATIENT_ID not in text, path
    for path in out.rglob("*"):
        assert "DEMO" not in path.name and PATIENT_ID not in path.name, path


def test_committed_tree_is_what_the_generator_makes(demo_data, tmp_path):
    build_demo_tree(tmp_path)
    committed = sorted(
        p.relative_to(demo_data / "dicom") for p in (demo_data / "dicom").rglob("*") if p.is_file()
    )
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert committed == made
    for relative in committed:
        assert (demo_data / "dicom" / relative).read_bytes() == (tmp_path / relative).read_bytes(), relative
