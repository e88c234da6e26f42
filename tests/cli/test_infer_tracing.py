"""Issue 18 item 4: every output traces back to its input without patient data in the case id. The per-case
console line, ``report.csv`` and ``OUT/<case_id>/case.json`` name the source relative to INPUT and, for DICOM,
SeriesNumber and SeriesDescription; a NIfTI file inside a DICOM tree keeps its folders."""

from __future__ import annotations

import csv
import json
import shutil


def test_dicom_tree_with_a_nifti_inside_traces_every_case_to_its_source(
    unetseg_cli, toy_bundle, demo_data, tmp_path
):
    tree = tmp_path / "tree"
    shutil.copytree(demo_data / "dicom" / "study_1" / "series_3", tree / "study_1" / "series_3")
    nested = tree / "study_1" / "derived" / "nifti"
    nested.mkdir(parents=True)
    shutil.copy(demo_data / "hippocampus" / "images" / "hippocampus_045.nii.gz", nested / "scan.nii.gz")
    out = tmp_path / "out"

    result = unetseg_cli("infer", tree, "--bundle", toy_bundle, "--out", out, "--device", "cpu")

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 2, result.stdout
    dicom_line = next(line for line in lines if "study_1/series_3" in line)
    assert dicom_line.endswith("study_1/series_3 (#3 T1 hippocampus crop hippocampus_008)"), dicom_line
    nifti_line = next(line for line in lines if "scan" in line)
    assert nifti_line.endswith("  study_1/derived/nifti/scan.nii.gz"), nifti_line

    rows = {row["case_id"]: row for row in csv.DictReader((out / "report.csv").open())}
    sources = {row["source"]: row for row in rows.values()}
    assert set(sources) == {"study_1/series_3", "study_1/derived/nifti/scan.nii.gz"}
    dicom_row = sources["study_1/series_3"]
    assert (dicom_row["series_number"], dicom_row["series_description"]) == (
        "3",
        "T1 hippocampus crop hippocampus_008",
    )
    for case_id, row in rows.items():
        record = json.loads((out / case_id / "case.json").read_text())["record"]
        assert record["source"] == row["source"]
        assert case_id in dicom_line or case_id in nifti_line  # the line names the id it traces
    dicom_record = json.loads((out / dicom_row["case_id"] / "case.json").read_text())["record"]
    assert dicom_record["series"]["series_number"] == 3
    assert dicom_record["series"]["series_description"] == "T1 hippocampus crop hippocampus_008"


def test_a_linked_input_is_named_where_the_user_put_it(tmp_path):
    """relative_source: a link inside INPUT pointing outside it (datalad, a link farm) is named by its path under
    INPUT, not by the absolute path of its target; so is a file under an INPUT given through a linked folder."""
    from app.batch.tracing import relative_source

    store = tmp_path / "annex" / "objects" / "blob.nii.gz"
    store.parent.mkdir(parents=True)
    store.write_bytes(b"x")
    inputs = tmp_path / "in"
    (inputs / "sub-02").mkdir(parents=True)
    (inputs / "sub-02" / "T1w.nii.gz").symlink_to(store)
    assert relative_source(inputs / "sub-02" / "T1w.nii.gz", [inputs]) == "sub-02/T1w.nii.gz"
    linked = tmp_path / "linked_in"
    linked.symlink_to(inputs, target_is_directory=True)
    assert relative_source(linked / "sub-02" / "T1w.nii.gz", [linked]) == "sub-02/T1w.nii.gz"
    assert relative_source(tmp_path / "elsewhere.nii.gz", [inputs]) == str(tmp_path / "elsewhere.nii.gz")
