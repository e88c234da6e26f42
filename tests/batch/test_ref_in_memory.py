"""Issue 16: ``infer --ref`` scores the label map each case holds in memory while it runs, through the same
``score_case`` as ``unetseg evaluate``; no output is written to be read back for its scores (the overlays of
the worst cases re-read theirs, a picture, not a score), and a case complete from an earlier run is scored from
its file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import app.evaluation.run as evaluation_run
import app.evaluation.runner as evaluation_runner
import app.reporting.evaluation_reports as evaluation_reports
from app.batch import BatchConfig, run_batch
from app.evaluation import evaluate_folders
from app.evaluation.io import read_label


@pytest.fixture
def cases_and_refs(demo_data, tmp_path):
    """Two real MRI volumes and one broken file, with references for all three and one for no case."""
    inputs, refs = tmp_path / "in", tmp_path / "ref"
    inputs.mkdir()
    refs.mkdir()
    for name in ("hippocampus_008", "hippocampus_045"):
        shutil.copyfile(demo_data / "hippocampus" / "images" / f"{name}.nii.gz", inputs / f"{name}.nii.gz")
        shutil.copyfile(demo_data / "hippocampus" / "labels" / f"{name}.nii.gz", refs / f"{name}.nii.gz")
    (inputs / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    shutil.copyfile(demo_data / "hippocampus" / "labels" / "hippocampus_008.nii.gz", refs / "broken.nii.gz")
    shutil.copyfile(
        demo_data / "hippocampus" / "labels" / "hippocampus_035.nii.gz", refs / "elsewhere.nii.gz"
    )
    return inputs, refs


@pytest.fixture
def reads(monkeypatch):
    """Every label file read, by what it was read for: ``"pictures"`` while the evaluation reports are written (the
    overlays of the worst cases), ``"scoring"`` otherwise."""
    seen: list[tuple[str, Path]] = []
    phase = ["scoring"]

    def read(path):
        seen.append((phase[0], Path(path)))
        return read_label(path)

    write_reports = evaluation_reports.write_evaluation_reports

    def reporting(*args, **kwargs):
        phase[0] = "pictures"
        try:
            return write_reports(*args, **kwargs)
        finally:
            phase[0] = "scoring"

    monkeypatch.setattr(evaluation_runner, "read_label", read)
    monkeypatch.setattr(evaluation_run, "read_label", read)
    monkeypatch.setattr(evaluation_reports, "write_evaluation_reports", reporting)
    return seen


def _config(toy_bundle, inputs, refs, out, **options):
    return BatchConfig(
        inputs=(inputs,), bundle=toy_bundle, out=out, device="cpu", backend="torch", ref=refs, **options
    )


def test_each_case_is_scored_from_the_label_map_it_holds(toy_bundle, cases_and_refs, reads, tmp_path):
    inputs, refs = cases_and_refs
    out = tmp_path / "out"
    result = run_batch(_config(toy_bundle, inputs, refs, out))

    ok = [r for r in result.records if r.status == "ok"]
    assert len(ok) == 2 and all(r.score is not None and len(r.score.results) == 2 for r in ok)
    assert all("score" in r.timings_s for r in ok)
    # scoring read the references only; the outputs in OUT were read for the overlay pictures alone
    assert {path.parent for module, path in reads if module == "scoring"} == {refs}
    assert any(path.is_relative_to(out) for module, path in reads if module == "pictures")

    # the same numbers as unetseg evaluate on the written files
    files = evaluate_folders(out, refs, labels={1: "anterior", 2: "posterior"})
    scores = result.scores
    assert scores is not None and scores.reports is not None
    by_case = {(r.case_id, r.name): r.dice for r in files.results}
    for case_id in ("hippocampus_008", "hippocampus_045"):
        for name, dice in scores.dice[case_id].items():
            assert dice == pytest.approx(by_case[(case_id, name)], abs=1e-4)
    assert Path(scores.reports["metrics_csv"]).read_text().count("hippocampus_045") == 2

    # the failed case is a miss that says why; the reference of no case is named, not averaged
    (failure,) = scores.failures
    assert failure.case_id == "broken" and failure.flag == "no_prediction"
    assert "the case is failed" in failure.message and "broken.nii.gz" in failure.message
    assert scores.not_in_run == ("elsewhere",) and not scores.ok and result.exit_code == 1
    evaluation = json.loads((out / "report.json").read_text())["evaluation"]
    assert evaluation == scores.to_dict()
    assert "score" not in json.loads((out / "hippocampus_045" / "case.json").read_text())["record"]


def test_a_resumed_run_scores_its_earlier_cases_from_their_files(toy_bundle, cases_and_refs, reads, tmp_path):
    inputs, refs = cases_and_refs
    out = tmp_path / "out"
    first = run_batch(_config(toy_bundle, inputs, refs, out))
    reads.clear()

    again = run_batch(_config(toy_bundle, inputs, refs, out, resume=True))

    assert [r.status for r in again.records if r.case_id != "broken"] == ["skipped", "skipped"]
    assert all(r.score is None for r in again.records)  # nothing was segmented in this process
    scored = {path for module, path in reads if module == "scoring"}
    assert {p for p in scored if p.is_relative_to(out)} == {
        out / cid / f"{cid}_seg.nii.gz" for cid in ("hippocampus_008", "hippocampus_045")
    }
    assert first.scores is not None and again.scores is not None
    assert again.scores.dice == first.scores.dice
    assert again.scores.mean_dice == first.scores.mean_dice


def test_infer_ref_pairs_nnunet_layout_cases_with_their_labels(toy_bundle, demo_data, tmp_path):
    """imagesTs/<case>_0000.nii.gz against labelsTs/<case>.nii.gz: the case (id <case>_0000) is scored against
    <case>, and that reference is not listed as naming no case of the run."""
    inputs, refs = tmp_path / "imagesTs", tmp_path / "labelsTs"
    inputs.mkdir()
    refs.mkdir()
    shutil.copyfile(
        demo_data / "hippocampus" / "images" / "hippocampus_008.nii.gz", inputs / "h8_0000.nii.gz"
    )
    shutil.copyfile(demo_data / "hippocampus" / "labels" / "hippocampus_008.nii.gz", refs / "h8.nii.gz")
    result = run_batch(_config(toy_bundle, inputs, refs, tmp_path / "out"))
    assert [r.case_id for r in result.records] == ["h8_0000"]
    scores = result.scores
    assert scores is not None and scores.reports is not None and scores.not_in_run == ()
    assert set(scores.dice["h8_0000"]) == {"anterior", "posterior"}
    assert scores.ok and result.exit_code == 0


def test_infer_ref_reports_reference_values_the_bundle_does_not_name(toy_bundle, demo_data, tmp_path, capsys):
    """A reference from another label map (posterior recoded 2 -> 3): still not scored, but the case, report.json,
    the evaluation reports and the console say which value it holds and how many voxels."""
    import nibabel as nib
    import numpy as np

    from app.cli.infer import print_summary

    inputs, refs = tmp_path / "in", tmp_path / "ref"
    inputs.mkdir()
    refs.mkdir()
    name = "hippocampus_008"
    shutil.copyfile(demo_data / "hippocampus" / "images" / f"{name}.nii.gz", inputs / f"{name}.nii.gz")
    label = nib.load(str(demo_data / "hippocampus" / "labels" / f"{name}.nii.gz"))
    array = np.asanyarray(label.dataobj)
    voxels = int((array == 2).sum())
    nib.save(
        nib.Nifti1Image(np.where(array == 2, 3, array).astype(np.uint8), label.affine),
        refs / f"{name}.nii.gz",
    )
    out = tmp_path / "out"

    result = run_batch(_config(toy_bundle, inputs, refs, out))

    scores = result.scores
    assert scores is not None and scores.reports is not None
    (entry,) = scores.unlisted.values
    assert (entry.side, entry.value, entry.voxels, entry.case_ids) == ("reference", 3, voxels, (name,))
    evaluation = json.loads((out / "report.json").read_text())["evaluation"]
    assert evaluation["unlisted_values"]["reference"] == [
        {"value": 3, "voxels": voxels, "cases": 1, "case_ids": [name]}
    ]
    assert f"reference 3 ({voxels} voxels)" in Path(scores.reports["metrics_csv"]).read_text()
    print_summary(result)
    assert f"label values not in the label list (not scored): reference 3 ({voxels} voxels in 1 case)" in (
        capsys.readouterr().out
    )
