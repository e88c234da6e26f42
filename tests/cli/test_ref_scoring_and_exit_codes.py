"""Issue 18 item 1, run as a user would (subprocesses, output piped): ``infer --ref`` scores only the references
of this run's cases and names the others in one line; ``evaluate`` keeps counting a missing prediction as a
miss but says so in one line; every command documents its exit codes in ``--help`` and the README, and a
non-zero exit is printed with its meaning."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from app.cli.main import COMMANDS


@pytest.fixture
def three_references(demo_data, tmp_path):
    ref = tmp_path / "labelsTr"
    shutil.copytree(demo_data / "hippocampus" / "labels", ref)
    return ref


def test_infer_ref_scores_only_the_cases_of_this_run(
    unetseg_cli, toy_bundle, demo_data, three_references, tmp_path
):
    image = demo_data / "hippocampus" / "images" / "hippocampus_045.nii.gz"
    out = tmp_path / "out"

    result = unetseg_cli(
        "infer", image, "--bundle", toy_bundle, "--out", out, "--device", "cpu", "--ref", three_references
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "exit code" not in result.stderr
    lines = [line for line in result.stdout.splitlines() if "name no case of this run" in line]
    assert lines == [
        f"2 reference(s) in {three_references} name no case of this run and were not scored or averaged: "
        "hippocampus_008, hippocampus_035"
    ]
    evaluation = json.loads((out / "report.json").read_text())["evaluation"]
    assert evaluation["ok"] and evaluation["failures"] == []
    assert evaluation["not_in_run"] == ["hippocampus_008", "hippocampus_035"]
    assert set(evaluation["dice"]) == {"hippocampus_045"}
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert {row["case_id"] for row in rows} == {"hippocampus_045"}
    assert not any(row["flag"] == "no_prediction" for row in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert all(entry["n"] == 1 for entry in summary["labels"].values())
    for name, mean in evaluation["mean_dice"].items():  # the mean is the one case's Dice, nothing averaged in
        assert mean == pytest.approx(evaluation["dice"]["hippocampus_045"][name], abs=1e-4)


def test_infer_ref_with_no_reference_of_the_run_exits_1_and_says_why(
    unetseg_cli, toy_bundle, demo_data, three_references, tmp_path
):
    (three_references / "hippocampus_045.nii.gz").unlink()
    image = demo_data / "hippocampus" / "images" / "hippocampus_045.nii.gz"
    result = unetseg_cli(
        "infer",
        image,
        "--bundle",
        toy_bundle,
        "--out",
        tmp_path / "out",
        "--device",
        "cpu",
        "--ref",
        three_references,
    )
    assert result.returncode == 1
    assert "nothing scored: no reference in" in result.stdout
    assert result.stderr.splitlines()[-1].startswith(
        "unetseg infer: exit code 1: some case failed or is partial"
    )


def test_evaluate_counts_missing_predictions_as_misses_in_one_line(
    unetseg_cli, demo_data, three_references, tmp_path
):
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(three_references / "hippocampus_045.nii.gz", pred / "hippocampus_045_seg.nii.gz")

    result = unetseg_cli("evaluate", "--pred", pred, "--ref", three_references, "--out", tmp_path / "reports")

    assert result.returncode == 2
    err = result.stderr.splitlines()
    assert not [line for line in err if line.startswith("failed:")]
    missing = [line for line in err if "have no prediction" in line]
    assert missing == [
        "2 reference(s) have no prediction and count as misses (Dice 0, worst-case distances; flag "
        "no_prediction in metrics.csv and summary.json): hippocampus_008, hippocampus_035"
    ]
    assert err[-1].startswith("unetseg evaluate: exit code 2: some reference was not scored")
    rows = list(csv.DictReader((tmp_path / "reports" / "metrics.csv").open()))
    assert {row["case_id"] for row in rows if row["flag"] == "no_prediction"} == {
        "hippocampus_008",
        "hippocampus_035",
    }


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_documents_its_exit_codes(unetseg_cli, repo_root, command):
    import importlib

    table = importlib.import_module(f"app.cli.{command}").EXIT_CODES
    assert {0, 2, 130} <= set(table)
    result = unetseg_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    epilog = result.stdout.split("exit codes:\n", 1)[1]
    for code in table:
        assert f"\n  {code:<4} " in "\n" + epilog, (command, code)
    readme = (repo_root / "README.md").read_text().split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    for code in table:
        assert f"| {code} |" in readme, (command, code)


def test_a_nonzero_exit_is_printed_with_its_meaning(unetseg_cli, toy_bundle, tmp_path):
    result = unetseg_cli("infer", tmp_path / "typo", "--bundle", toy_bundle, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "unetseg infer: exit code 2: input error: an input, reference or option to fix (the message names it), "
        "or the inputs hold no case at all"
    )


def test_infer_ref_names_outputs_by_their_place_in_out(
    unetseg_cli, toy_bundle, demo_data, three_references, tmp_path
):
    """A case of the run with no reference (a DICOM series, named by its hash) is listed as unused, named by its
    label file in OUT (an earlier version scored copies in a temporary folder and named those)."""
    out = tmp_path / "out"
    image = demo_data / "hippocampus" / "images" / "hippocampus_045.nii.gz"
    series = demo_data / "dicom" / "study_2" / "series_3"
    result = unetseg_cli(
        "infer",
        image,
        series,
        "--bundle",
        toy_bundle,
        "--out",
        out,
        "--device",
        "cpu",
        "--ref",
        three_references,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    evaluation = json.loads((out / "report.json").read_text())["evaluation"]
    (unused,) = evaluation["unused"]
    assert unused["path"].startswith(str(out)) and unused["path"].endswith("_seg.nii.gz")
    for page in ("scores.html", "summary.json", "report.html"):
        text = (out / page).read_text()
        assert "unetseg-scoring-" not in text, page
    assert unused["path"] in json.dumps(json.loads((out / "summary.json").read_text()))

    # the run folder read back by unetseg evaluate: the same one unused file; the previews and the series' DICOM
    # SEG are the run's other outputs, not unused predictions
    assert list(out.glob("*/preview.png")) and list(out.glob("*/*_seg.dcm"))
    result = unetseg_cli("evaluate", "--pred", out, "--ref", three_references, "--out", tmp_path / "reports")
    assert [line for line in result.stderr.splitlines() if line.startswith("unused:")] == [
        f"unused: {unused['path']}: no reference with this case id"
    ]


def test_evaluate_prints_the_first_unused_files_and_counts_the_rest(unetseg_cli, three_references, tmp_path):
    from app.cli.evaluate import UNUSED_PRINTED

    pred = tmp_path / "pred"
    pred.mkdir()
    for name in ("hippocampus_008", "hippocampus_035", "hippocampus_045"):
        shutil.copy(three_references / f"{name}.nii.gz", pred / f"{name}_seg.nii.gz")
    for i in range(UNUSED_PRINTED + 3):
        shutil.copy(three_references / "hippocampus_045.nii.gz", pred / f"stray_{i:02d}_seg.nii.gz")

    result = unetseg_cli("evaluate", "--pred", pred, "--ref", three_references, "--out", tmp_path / "reports")

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("unused:")]
    assert len(lines) == UNUSED_PRINTED + 1
    assert lines[-1] == f"unused: 3 more files, all listed in {tmp_path / 'reports' / 'summary.json'}"
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert len(summary["unused_files"]) == UNUSED_PRINTED + 3
