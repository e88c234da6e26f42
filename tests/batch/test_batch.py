"""The batch runner: poisoned cases fail alone, --resume skips complete cases, reports carry no patient data."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from app.batch import BatchConfig, run_batch
from app.demo.dicom_tree import PATIENT_ID, PATIENT_NAME

PHI = (PATIENT_NAME, PATIENT_ID, PATIENT_NAME.replace("^", " "))


def _poisoned_tree(demo_data: Path, root: Path) -> Path:
    """2 good cases (a DICOM series, a NIfTI) and 3 poisoned ones."""
    dicom = demo_data / "dicom"
    shutil.copytree(dicom / "study_2" / "series_3", root / "good_series")
    shutil.copyfile(demo_data / "hippocampus" / "images" / "hippocampus_035.nii.gz", root / "good.nii.gz")
    shutil.copytree(dicom / "study_1" / "series_4", root / "truncated_series")
    victim = root / "truncated_series" / "IM_0010.dcm"
    victim.write_bytes(victim.read_bytes()[:-1500])
    shutil.copytree(dicom / "study_1" / "series_3", root / "gap_series")
    (root / "gap_series" / "IM_0020.dcm").unlink()
    (root / "not_an_image.nii.gz").write_text("this is a text file, not a NIfTI image\n")
    (root / "notes.txt").write_text("clutter\n")
    return root


@pytest.fixture(scope="module")
def poisoned_run(toy_bundle, demo_data, tmp_path_factory):
    root = _poisoned_tree(demo_data, tmp_path_factory.mktemp("poisoned"))
    out = tmp_path_factory.mktemp("out")
    config = BatchConfig(inputs=(root,), bundle=toy_bundle, out=out, device="cpu")
    return run_batch(config), out


def test_poisoned_cases_fail_alone_with_reasons(poisoned_run):
    result, out = poisoned_run
    assert result.exit_code == 1
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed"
    assert report["counts"] == {"cases": 5, "ok": 2, "partial": 0, "skipped": 0, "failed": 3, "pending": 0}
    by_input = {Path(c["input"]).name: c for c in report["cases"]}
    assert by_input["good_series"]["status"] == "ok"
    assert by_input["good.nii.gz"]["status"] == "ok"
    assert "IM_0010.dcm" in by_input["truncated_series"]["reason"]
    assert "truncated" in by_input["truncated_series"]["reason"]
    assert "missing slice" in by_input["gap_series"]["reason"]
    assert "not_an_image.nii.gz" in by_input["not_an_image.nii.gz"]["reason"]
    for case in report["cases"]:
        if case["status"] == "failed":
            assert case["reason"].startswith("InputError")
            assert not (out / case["case_id"] / "case.json").exists()


def test_good_cases_have_their_outputs_and_records(poisoned_run, toy_bundle):
    result, out = poisoned_run
    report = json.loads((out / "report.json").read_text())
    for case in report["cases"]:
        if case["status"] != "ok":
            continue
        kinds = {o["kind"] for o in case["outputs"]}
        labels = {"nifti", "seg"} if case["kind"] == "dicom" else {"nifti"}
        assert kinds == labels | {"statistics", "preview"}
        for output in case["outputs"]:
            assert Path(output["path"]).stat().st_size == output["bytes"]
        assert set(case["timings_s"]) >= {"load", "inference", "write"}
        manifest = json.loads((out / case["case_id"] / "case.json").read_text())
        assert manifest["record"]["outputs"] == case["outputs"]
    series = next(c for c in report["cases"] if c["kind"] == "dicom" and c["status"] == "ok")["series"]
    assert series["modality"] == "MR" and series["series_number"] == 3
    assert series["series_instance_uid"].startswith("2.25.")
    provenance = report["provenance"]
    assert {"unetseg", "monai", "torch", "numpy"} <= set(provenance["versions"])
    metadata = json.loads((toy_bundle / "configs" / "metadata.json").read_text())
    assert provenance["bundle"]["version"] == metadata["version"]
    runtime = report["provenance"]["options"]["runtime"]
    assert runtime["backend"] in {"torch", "onnxruntime", "openvino"} and runtime["sw_batch_size"] >= 1
    assert provenance["device"] == "cpu"
    assert provenance["started"] <= provenance["finished"]
    taken = [d for d in report["discovery"] if d["action"] == "taken"]
    assert len(taken) == 5
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert [r["case_id"] for r in rows] == [c["case_id"] for c in report["cases"]]


def test_no_patient_name_or_id_in_reports_or_file_names(poisoned_run):
    _, out = poisoned_run
    for name in ("report.json", "report.csv"):
        text = (out / name).read_text()
        assert not any(value in text for value in PHI), name
    for path in out.rglob("*"):
        assert not any(value in path.name for value in PHI), path
        if path.name == "case.json":
            assert not any(value in path.read_text() for value in PHI), path


def test_resume_skips_complete_cases_and_redoes_interrupted_ones(toy_bundle, demo_data, tmp_path):
    images = demo_data / "hippocampus" / "images"
    inputs = (images / "hippocampus_008.nii.gz", images / "hippocampus_045.nii.gz")
    out = tmp_path / "out"
    first = run_batch(BatchConfig(inputs=inputs, bundle=toy_bundle, out=out, device="cpu"))
    assert [r.status for r in first.records] == ["ok", "ok"]

    again = run_batch(BatchConfig(inputs=inputs, bundle=toy_bundle, out=out, device="cpu", resume=True))
    assert [r.status for r in again.records] == ["skipped", "skipped"]
    assert again.report["provenance"]["device"].startswith("not loaded")
    assert again.exit_code == 0
    assert again.records[0].outputs == first.records[0].outputs

    (out / "hippocampus_008" / "case.json").unlink()  # interrupted after the outputs, before case.json
    with (out / "hippocampus_045" / "hippocampus_045_seg.nii.gz").open("ab") as handle:
        handle.write(b"\0")  # an output changed behind our back
    third = run_batch(BatchConfig(inputs=inputs, bundle=toy_bundle, out=out, device="cpu", resume=True))
    assert [r.status for r in third.records] == ["ok", "ok"]
    assert (out / "hippocampus_008" / "case.json").is_file()

    fourth = run_batch(BatchConfig(inputs=inputs, bundle=toy_bundle, out=out, device="cpu", resume=True))
    assert [r.status for r in fourth.records] == ["skipped", "skipped"]


def test_resume_redoes_a_case_whose_input_was_replaced_or_is_another_file(toy_bundle, demo_data, tmp_path):
    """--resume trusts case.json only for the same input: a file replaced by another scan of the same name is
    segmented again, and so is a case whose id now names another file (the reviewer's id shift: site_a/case
    added beside site_b/case and site_c/case used to be skipped with site_b's mask)."""
    images = demo_data / "hippocampus" / "images"
    inputs = tmp_path / "in"
    for site, name in (("site_b", "hippocampus_008"), ("site_c", "hippocampus_045")):
        (inputs / site).mkdir(parents=True)
        shutil.copyfile(images / f"{name}.nii.gz", inputs / site / "case.nii.gz")
    out = tmp_path / "out"
    config = BatchConfig(inputs=(inputs,), bundle=toy_bundle, out=out, device="cpu", resume=True)
    first = {Path(r.input).parent.name: r.case_id for r in run_batch(config).records}

    (inputs / "site_a").mkdir()
    shutil.copyfile(images / "hippocampus_035.nii.gz", inputs / "site_a" / "case.nii.gz")
    second = run_batch(config)
    by_site = {Path(r.input).parent.name: r for r in second.records}
    assert {site: by_site[site].case_id for site in first} == first
    assert [by_site[s].status for s in ("site_a", "site_b", "site_c")] == ["ok", "skipped", "skipped"]

    replaced = inputs / "site_b" / "case.nii.gz"
    shutil.copyfile(images / "hippocampus_035.nii.gz", replaced)  # another scan under the same name
    third = {Path(r.input).parent.name: r.status for r in run_batch(config).records}
    assert third == {"site_a": "skipped", "site_b": "ok", "site_c": "skipped"}
    manifest = json.loads((out / first["site_b"] / "case.json").read_text())
    assert manifest["fingerprint"]["input"] == str(replaced.absolute())
    assert manifest["fingerprint"]["input_bytes"] == replaced.stat().st_size


def test_out_inside_the_input_is_not_segmented_on_the_next_run(toy_bundle, demo_data, tmp_path):
    """infer IN --out IN/out: the second run used to take the first run's label maps as new cases."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copyfile(demo_data / "hippocampus" / "images" / "hippocampus_008.nii.gz", inputs / "h8.nii.gz")
    config = BatchConfig(inputs=(inputs,), bundle=toy_bundle, out=inputs / "out", device="cpu", resume=True)
    run_batch(config)
    again = run_batch(config)
    assert [(r.case_id, r.status) for r in again.records] == [("h8", "skipped")]
    assert any(d.subject == "folder" and d.action == "skipped" for d in again.decisions)


def test_a_file_name_of_240_characters_is_segmented_under_a_shortened_id(toy_bundle, demo_data, tmp_path):
    """A legal 240-character file name failed with 'File name too long': the outputs and their temporary
    siblings add characters to the id."""
    from app.loading.cases import MAX_CASE_ID

    inputs = tmp_path / "in"
    inputs.mkdir()
    long_name = "subject_" + "x" * 225 + ".nii.gz"
    shutil.copyfile(demo_data / "hippocampus" / "images" / "hippocampus_008.nii.gz", inputs / long_name)
    (record,) = run_batch(
        BatchConfig(inputs=(inputs,), bundle=toy_bundle, out=tmp_path / "out", device="cpu")
    ).records
    assert record.status == "ok", record.reason
    assert len(record.case_id) == MAX_CASE_ID and record.case_id.startswith("subject_xxx")
    assert (tmp_path / "out" / record.case_id / f"{record.case_id}_seg.nii.gz").is_file()


def test_seg_only_for_a_nifti_input_fails_that_case_with_the_fix(toy_bundle, demo_data, tmp_path):
    image = demo_data / "hippocampus" / "images" / "hippocampus_045.nii.gz"
    config = BatchConfig(
        inputs=(image,), bundle=toy_bundle, out=tmp_path, device="cpu", formats=frozenset({"seg"})
    )
    result = run_batch(config)
    assert result.exit_code == 1
    assert "add nifti to --formats" in result.records[0].reason


def test_a_seg_the_source_cannot_support_keeps_the_nifti_and_marks_the_case_partial(
    toy_bundle, demo_data, tmp_path
):
    """Anonymised series often lack FrameOfReferenceUID (every dicom2nifti test series does): highdicom cannot
    reference such a source, but the segmentation itself is good and must not be thrown away."""
    import pydicom

    series = tmp_path / "no_for_uid"
    shutil.copytree(demo_data / "dicom" / "study_2" / "series_3", series)
    for path in series.glob("*.dcm"):
        dataset = pydicom.dcmread(path)
        del dataset.FrameOfReferenceUID
        dataset.save_as(path)
    out = tmp_path / "out"
    result = run_batch(BatchConfig(inputs=(series,), bundle=toy_bundle, out=out, device="cpu"))
    (record,) = result.records
    assert record.status == "partial"
    assert record.reason.startswith("DICOM SEG not written") and "FrameOfReferenceUID" in record.reason
    assert [o.kind for o in record.outputs] == ["nifti", "statistics", "preview"]  # no "seg"
    assert (out / record.case_id / f"{record.case_id}_seg.nii.gz").is_file()
    assert not (out / record.case_id / f"{record.case_id}_seg.dcm").exists()
    assert result.exit_code == 1  # a requested output is missing: scripts must notice
    assert result.report["status"] == "partial"
    again = run_batch(BatchConfig(inputs=(series,), bundle=toy_bundle, out=out, device="cpu", resume=True))
    assert [r.status for r in again.records] == ["skipped"]  # rerunning cannot fix the source's UIDs
