"""`unetseg infer` from the command line: exit codes, summary, and a --help that imports no torch/MONAI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from app.cli.main import main


@pytest.mark.parametrize("argv", [["--help"], ["infer", "--help"], ["demo", "--help"]])
def test_help_imports_neither_monai_nor_torch(argv, repo_root):
    code = (
        "import sys\n"
        "from app.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('torch', 'monai', 'pydicom', 'highdicom') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout


def test_infer_exit_code_1_when_a_case_fails(toy_bundle, demo_data, tmp_path, capsys):
    bogus = tmp_path / "in" / "broken.nii.gz"
    bogus.parent.mkdir()
    bogus.write_text("not an image")
    good = demo_data / "hippocampus" / "images" / "hippocampus_045.nii.gz"
    out = tmp_path / "out"
    code = main(
        ["infer", str(good), str(bogus), "--bundle", str(toy_bundle), "--out", str(out), "--device", "cpu"]
    )
    assert code == 1
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    ok_line = next(line for line in lines if "hippocampus_045" in line)
    assert re.match(r"\[[12]/2\] ok +\d+\.\d s  hippocampus_045  hippocampus_045\.nii\.gz$", ok_line), ok_line
    failed_line = next(line for line in lines if " broken " in line)
    assert re.match(r"\[[12]/2\] failed .* broken  broken\.nii\.gz$", failed_line), failed_line
    assert "broken.nii.gz: cannot read the NIfTI header" in printed  # the reason, on the line below
    report = json.loads((out / "report.json").read_text())
    assert report["provenance"]["command_line"][:2] == ["unetseg", "infer"]
    assert (out / "hippocampus_045" / "hippocampus_045_seg.nii.gz").is_file()


def test_infer_user_errors_map_to_exit_codes(toy_bundle, demo_data, tmp_path):
    good = str(demo_data / "hippocampus" / "images" / "hippocampus_045.nii.gz")
    out = str(tmp_path / "out")
    assert main(["infer", good, "--bundle", str(toy_bundle), "--out", out, "--formats", "png"]) == 2
    assert main(["infer", str(tmp_path / "missing"), "--bundle", str(toy_bundle), "--out", out]) == 2
    assert main(["infer", good, "--bundle", str(tmp_path), "--out", out]) == 3


@pytest.mark.parametrize(
    ("flags", "skip_empty", "float32"),
    [((), True, True), (("--no-skip-empty", "--float64-resampling"), False, False)],
)
def test_infer_speed_options_reach_the_run_and_the_report(
    toy_bundle, demo_data, tmp_path, flags, skip_empty, float32
):
    good = demo_data / "hippocampus" / "images" / "hippocampus_045.nii.gz"
    out = tmp_path / "out"
    argv = ["infer", str(good), "--bundle", str(toy_bundle), "--out", str(out), "--device", "cpu"]
    assert main([*argv, "--backend", "torch", *flags]) == 0
    provenance = json.loads((out / "report.json").read_text())["provenance"]
    options = provenance["options"]
    assert options["skip_empty"] is skip_empty
    assert options["resample_float32"] is float32
    assert options["runtime"]["resample_dtype"] == ("float32" if float32 else "bundle")
    for flag in ("--no-skip-empty", "--float64-resampling"):
        assert (flag in provenance["command_line"]) is (flag in flags)


def test_infer_names_the_dicom_series_discovery_did_not_take(toy_bundle, demo_data, tmp_path, capsys):
    """A series refused by discovery (here: CT for an MR bundle) is not a case row; the summary says so, with
    the reason, so it is not lost from sight."""
    import shutil

    import pydicom

    series = tmp_path / "in" / "ct_series"
    shutil.copytree(demo_data / "dicom" / "study_2" / "series_3", series)
    for path in series.iterdir():
        dataset = pydicom.dcmread(path)
        dataset.Modality = "CT"
        dataset.save_as(path)
    shutil.copyfile(
        demo_data / "hippocampus" / "images" / "hippocampus_045.nii.gz", tmp_path / "in" / "h.nii.gz"
    )
    code = main(["infer", str(tmp_path / "in"), "--bundle", str(toy_bundle), "--out", str(tmp_path / "out")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "1 DICOM series not taken: Modality CT is not the required MR (1)" in printed
