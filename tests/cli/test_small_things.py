"""Issue 18 item 6, each run as a user would (a subprocess, output piped): the ``--ref`` help is a whole
sentence, a mistyped input leaves no empty OUT, ``convert`` says when it found no volume, and ``unetseg demo``
writes into a printed temporary folder, not the current directory. (The ONNX export cache moving to the user
cache is tested in tests/inference/test_runtime.py.)"""

from __future__ import annotations

import re
from pathlib import Path


def test_ref_help_is_a_whole_sentence(unetseg_cli):
    result = unetseg_cli("infer", "--help")
    assert result.returncode == 0, result.stderr
    ref_help = " ".join(result.stdout.split("\n  --ref DIR", 1)[1].split("\n  --shard", 1)[0].split())
    assert ref_help.startswith("folder of reference labels named <case_id>.nii.gz"), ref_help
    assert ref_help.endswith("references of cases not in this run are listed, not scored"), ref_help


def test_nonexistent_input_creates_no_output_folder(unetseg_cli, toy_bundle, tmp_path):
    out = tmp_path / "out"
    result = unetseg_cli("infer", tmp_path / "typo", "--bundle", toy_bundle, "--out", out)
    assert result.returncode == 2
    assert "typo: input does not exist" in result.stderr
    assert not out.exists()
    result = unetseg_cli(
        "infer", toy_bundle, "--bundle", toy_bundle, "--out", out, "--ref", tmp_path / "nope"
    )
    assert result.returncode == 2
    assert "nope: reference folder not found" in result.stderr
    assert not out.exists()


def test_convert_without_a_volume_says_so(unetseg_cli, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here")
    result = unetseg_cli("convert", folder, tmp_path / "x.nii.gz")
    assert result.returncode == 2
    assert "no image volume found here" in result.stderr and "nothing to convert" in result.stderr
    assert "exactly one" not in result.stderr
    assert not (tmp_path / "x.nii.gz").exists()


def test_demo_writes_into_a_printed_temporary_folder_not_the_current_one(unetseg_cli, toy_bundle, tmp_path):
    cwd, temp = tmp_path / "cwd", tmp_path / "temp"
    cwd.mkdir()
    temp.mkdir()
    result = unetseg_cli(
        "demo", "--bundle", toy_bundle, "--device", "cpu", cwd=cwd, env={"TMPDIR": str(temp)}
    )
    assert result.returncode in (0, 1), result.stderr  # toy weights: cases run, Dice is whatever it is
    assert list(cwd.iterdir()) == []
    match = re.search(r"writing into (\S+) \(a new temporary folder", result.stdout)
    assert match, result.stdout
    out = Path(match.group(1))
    assert out.parent == temp and out.name.startswith("unetseg-demo-")
    assert (out / "report.json").is_file()


def test_infer_over_inputs_without_any_case_exits_2_and_says_so(unetseg_cli, toy_bundle, tmp_path):
    """A wrong folder (empty, or only clutter) must not look like success to a scheduler."""
    folder = tmp_path / "clutter"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here")
    result = unetseg_cli("infer", folder, "--bundle", toy_bundle, "--out", tmp_path / "out")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no case found in the inputs" in result.stdout
    assert "0 case(s)" in result.stdout
