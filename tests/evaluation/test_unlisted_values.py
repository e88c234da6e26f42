"""Label values the maps hold but the label list does not name are still not scored, but every case says which it
found and how many voxels (metrics.csv ``unlisted_values``), summary.json sums them over the run, the console
prints one line and the report page lists them: a label recoded between two label maps (2 -> 3) no longer shows
as a bare Dice 0."""

from __future__ import annotations

import csv
import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from app.cli.main import main
from app.evaluation import Summary, evaluate_folders, score_case
from app.evaluation.unlisted import UnlistedSummary, UnlistedValues

LABELS = {1: "anterior", 2: "posterior"}


@pytest.fixture
def recoded(tmp_path, hippocampus_labels, save_nifti):
    """Real references; predictions equal to them, except: case 001's reference has posterior (2) recoded to 3,
    case 003's prediction has it recoded to 3, case 004 has no prediction and its reference holds 3 too."""
    ref_dir, pred_dir = tmp_path / "ref", tmp_path / "pred"
    counts = {}
    for case in ("hippocampus_001", "hippocampus_003", "hippocampus_004", "hippocampus_006"):
        image = nib.load(str(hippocampus_labels / f"{case}.nii.gz"))
        label = np.asanyarray(image.dataobj).astype(np.uint8)
        counts[case] = int((label == 2).sum())
        recoded = np.where(label == 2, 3, label).astype(np.uint8)
        if case == "hippocampus_001":
            save_nifti(ref_dir / f"{case}.nii.gz", recoded, image.affine)
            save_nifti(pred_dir / f"{case}.nii.gz", label, image.affine)
        elif case == "hippocampus_003":
            save_nifti(ref_dir / f"{case}.nii.gz", label, image.affine)
            save_nifti(pred_dir / f"{case}.nii.gz", recoded, image.affine)
        elif case == "hippocampus_004":
            save_nifti(ref_dir / f"{case}.nii.gz", recoded, image.affine)
        else:
            shutil.copy(hippocampus_labels / f"{case}.nii.gz", ref_dir / f"{case}.nii.gz")
            shutil.copy(hippocampus_labels / f"{case}.nii.gz", pred_dir / f"{case}.nii.gz")
    return tmp_path, counts


def test_each_case_records_the_unlisted_values_it_found(recoded):
    folder, counts = recoded
    run = evaluate_folders(folder / "pred", folder / "ref", labels=LABELS)

    n001, n003, n004 = counts["hippocampus_001"], counts["hippocampus_003"], counts["hippocampus_004"]
    assert run.unlisted == (
        UnlistedValues("hippocampus_001", reference=((3, n001),)),
        UnlistedValues("hippocampus_003", prediction=((3, n003),)),
        UnlistedValues("hippocampus_004", reference=((3, n004),)),  # no prediction: from its reference
    )
    rows = {(r.case_id, r.label): r for r in run.results}
    # still not scored: the recoded structure is a false positive / a miss, as before
    assert rows["hippocampus_001", 2].flag == "false_positive"
    assert rows["hippocampus_003", 2].flag == "missed"
    assert rows["hippocampus_001", 1].dice == 1.0
    # ... but every row of the case says why
    assert rows["hippocampus_001", 1].unlisted_values == f"reference 3 ({n001} voxels)"
    assert rows["hippocampus_003", 2].unlisted_values == f"prediction 3 ({n003} voxels)"
    assert rows["hippocampus_004", 2].unlisted_values == f"reference 3 ({n004} voxels)"
    assert rows["hippocampus_006", 2].unlisted_values == ""
    (reference, prediction) = sorted(run.summary.unlisted.values, key=lambda u: u.side, reverse=True)
    assert (reference.value, reference.voxels, reference.case_ids) == (
        3,
        n001 + n004,
        ("hippocampus_001", "hippocampus_004"),
    )
    assert (prediction.side, prediction.voxels, prediction.case_ids) == (
        "prediction",
        n003,
        ("hippocampus_003",),
    )


def test_evaluate_reports_and_prints_the_unlisted_values(recoded, capsys):
    folder, counts = recoded
    out = folder / "out"
    code = main(
        [
            "evaluate",
            "--pred",
            str(folder / "pred"),
            "--ref",
            str(folder / "ref"),
            "--out",
            str(out),
            "--labels",
            "anterior=1,posterior=2",
            "--worst",
            "0",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2  # hippocampus_004 has no prediction
    n_ref = counts["hippocampus_001"] + counts["hippocampus_004"]
    n_pred = counts["hippocampus_003"]
    line = next(x for x in captured.err.splitlines() if x.startswith("label values not in the label list"))
    assert f"prediction 3 ({n_pred} voxels in 1 case)" in line
    assert f"reference 3 ({n_ref} voxels in 2 cases)" in line and "--labels" in line

    with (out / "metrics.csv").open() as handle:
        rows = {(r["case_id"], r["label"]): r for r in csv.DictReader(handle)}
    assert (
        rows["hippocampus_001", "2"]["unlisted_values"] == f"reference 3 ({counts['hippocampus_001']} voxels)"
    )
    assert rows["hippocampus_006", "1"]["unlisted_values"] == ""

    summary = json.loads((out / "summary.json").read_text())
    unlisted = summary["unlisted_values"]
    assert unlisted["reference"] == [
        {"value": 3, "voxels": n_ref, "cases": 2, "case_ids": ["hippocampus_001", "hippocampus_004"]}
    ]
    assert unlisted["prediction"] == [
        {"value": 3, "voxels": n_pred, "cases": 1, "case_ids": ["hippocampus_003"]}
    ]
    assert Summary.from_dict(summary).unlisted == UnlistedSummary.from_dict(unlisted)

    page = (out / "report.html").read_text()
    assert "<h2>Label values not in the label list</h2>" in page and f"<td>{n_ref}</td>" in page


def test_nothing_is_reported_when_every_value_is_listed(tmp_path, hippocampus_labels, capsys):
    source = hippocampus_labels / "hippocampus_001.nii.gz"
    run = evaluate_folders(source, source, labels=LABELS)
    assert run.unlisted == () and not run.summary.unlisted
    assert run.summary.to_dict()["unlisted_values"] == {
        "note": "label values found in the label maps but not in the label list; not scored",
        "prediction": [],
        "reference": [],
    }
    # without a label list every non-zero value is scored: none is unlisted
    assert evaluate_folders(source, source).unlisted == ()


def test_background_listed_values_and_large_values(make_volume):
    ref = np.zeros((6, 6, 6), np.int32)
    ref[1:3, 1:3, 1:3] = 1
    ref[4, 4, 4] = 70_000  # an instance-id-like value: above the look-up table
    pred = ref.copy()
    pred[0, 0, 0] = 5
    score = score_case("c", make_volume(pred), make_volume(ref), {1: "a"})
    assert score.unlisted == UnlistedValues("c", prediction=((5, 1), (70_000, 1)), reference=((70_000, 1),))
    # a listed 0 (an EM membrane) is scored, never unlisted; floats holding whole numbers are label maps too
    membrane = make_volume(np.where(ref == 1, 255.0, 0.0))
    em = score_case("em", membrane, membrane, {0: "membrane", 255: "cell"})
    assert em.unlisted == UnlistedValues("em")
    assert score_case("c", make_volume(pred), make_volume(ref), None).unlisted is None


def test_the_ignite_report_handler_records_them(tmp_path, caplog):
    from types import SimpleNamespace

    import torch
    from monai.data import MetaTensor

    from app.engines.evaluation.report_handler import SegmentationReportHandler

    handler = SegmentationReportHandler(tmp_path / "out", labels={1: "cell"}, spatial_dims=2, worst=0)
    label = torch.zeros(1, 16, 16)
    label[0, 4:8, 4:8] = 1
    pred = label.clone()
    pred[0, 10:12, 10:12] = 7
    source = {"filename_or_obj": "/data/a.nii.gz"}
    engine = SimpleNamespace(
        state=SimpleNamespace(
            output=[
                {"pred": MetaTensor(pred, meta=dict(source)), "label": MetaTensor(label, meta=dict(source))}
            ]
        )
    )
    handler._reset(engine)
    handler._collect(engine)
    with caplog.at_level("WARNING"):
        handler._write(engine)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["unlisted_values"]["prediction"] == [
        {"value": 7, "voxels": 4, "cases": 1, "case_ids": ["a"]}
    ]
    assert "prediction 7 (4 voxels in 1 case)" in caplog.text
