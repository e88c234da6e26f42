"""case.json completeness rule, the report builder and the batch configuration (no model needed)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from app.batch.config import BatchConfig, parse_formats
from app.batch.manifest import completed_record, forget, write_manifest
from app.batch.records import CaseRecord, OutputFile, SegRecord
from app.batch.report import build_report, csv_rows, run_provenance
from app.errors import InputError
from app.loading import Decision

FINGERPRINT = {"weights_sha256": "ab" * 32, "formats": ["nifti"], "seg_type": None}


def _done_case(case_dir: Path) -> CaseRecord:
    case_dir.mkdir(parents=True)
    output = case_dir / "c1_seg.nii.gz"
    output.write_bytes(b"labels")
    record = CaseRecord("c1", "nifti", "in/c1.nii.gz", ["in/c1.nii.gz"], status="ok")
    record.outputs.append(OutputFile.of("nifti", output))
    write_manifest(case_dir, record, FINGERPRINT)
    return record


def test_complete_case_is_recognised(tmp_path):
    record = _done_case(tmp_path / "c1")
    found, why = completed_record(tmp_path / "c1", FINGERPRINT)
    assert why == ""
    assert found.outputs == record.outputs


def test_a_dicom_case_record_keeps_its_seg_typed_through_case_json(tmp_path):
    seg = SegRecord(
        path=str(tmp_path / "c1" / "c1_seg.dcm"),
        series_instance_uid="1.2.3",
        sop_instance_uid="1.2.3.1",
        series_number=9901,
        segmentation_type="BINARY",
        number_of_frames=12,
        segments={"1": "anterior", "2": "posterior"},
        source_series_instance_uid="1.2.9",
    )
    record = CaseRecord("c1", "dicom", "in/s1", ["in/s1/1.dcm"], status="ok", seg=seg)
    assert CaseRecord.from_dict(record.to_dict()) == record
    assert CaseRecord.from_dict(record.summary_dict()).seg == seg


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: forget(d), "no case.json"),
        (lambda d: (d / "case.json").write_text("{not json"), "unreadable"),
        (lambda d: (d / "c1_seg.nii.gz").unlink(), "missing"),
        (lambda d: (d / "c1_seg.nii.gz").write_bytes(b"LABELS"), "differs"),
    ],
)
def test_incomplete_cases_are_redone_with_a_reason(tmp_path, damage, expected):
    _done_case(tmp_path / "c1")
    damage(tmp_path / "c1")
    found, why = completed_record(tmp_path / "c1", FINGERPRINT)
    assert found is None
    assert expected in why


def test_other_weights_or_formats_mean_redo(tmp_path):
    _done_case(tmp_path / "c1")
    found, why = completed_record(tmp_path / "c1", {**FINGERPRINT, "weights_sha256": "cd" * 32})
    assert found is None and "weights_sha256" in why
    found, why = completed_record(tmp_path / "c1", {**FINGERPRINT, "formats": ["nifti", "seg"]})
    assert found is None and "formats" in why


def test_report_counts_status_decisions_and_csv_rows():
    ok = CaseRecord("a", "nifti", "a.nii.gz", ["a.nii.gz"], status="ok", timings_s={"load": 0.1234})
    bad = CaseRecord("b", "nifti", "b.nii.gz", ["b.nii.gz"], status="failed", reason="InputError: b: bad")
    decision = Decision("skipped", "file", "x.dcm", "not an image")
    t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    provenance = run_provenance(
        bundle={"name": "b"},
        device="cpu",
        command_line=["unetseg"],
        options={"f": {"x"}},
        started=t,
        finished=t,
    )
    report = build_report([ok, bad], [decision], provenance, {"dice": {"a": {"anterior": 0.9}}})
    assert report["status"] == "failed"
    assert report["counts"] == {"cases": 2, "ok": 1, "partial": 0, "skipped": 0, "failed": 1, "pending": 0}
    assert report["discovery"][0]["reason"] == "not an image"
    assert report["cases"][0]["timings_s"] == {"load": 0.123}
    rows = csv_rows(report)
    assert rows[0]["dice_anterior"] == 0.9 and rows[1]["dice_anterior"] == ""
    assert rows[1]["reason"] == "InputError: b: bad"


def test_config_refuses_bad_options(tmp_path):
    assert parse_formats("NIfTI, seg") == {"nifti", "seg"}
    with pytest.raises(InputError, match="format"):
        parse_formats("nifti,png")
    with pytest.raises(InputError, match="seg type"):
        BatchConfig(inputs=(tmp_path,), bundle=tmp_path, out=tmp_path, seg_type="fractional")
    with pytest.raises(InputError, match="overlap"):
        BatchConfig(inputs=(tmp_path,), bundle=tmp_path, out=tmp_path, overlap=1.0)
    with pytest.raises(InputError, match="reference"):
        BatchConfig(inputs=(tmp_path,), bundle=tmp_path, out=tmp_path, ref=tmp_path / "nope")
    config = BatchConfig(inputs=(tmp_path,), bundle=tmp_path, out=tmp_path)
    assert config.required_modality("MR") == "MR"
    assert (
        BatchConfig(inputs=(tmp_path,), bundle=tmp_path, out=tmp_path, modality="any").required_modality("MR")
        is None
    )
