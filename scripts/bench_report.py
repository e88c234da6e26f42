"""What keeping the run report current costs at archive scale (issue: "the report is never lost").

Builds N realistic case records (DICOM studies: series UIDs, NIfTI + SEG outputs with SHA-256, timings; the
shape ``unetseg infer`` writes), then pushes them through the real :class:`app.batch.live_report.LiveReport`
exactly as the runner does (journal line per case, throttled atomic rewrite of report.json/report.csv), with
no inference in between: the time measured is the reporting machinery alone. Prints a markdown table:

* one full report write at N cases (report.json + report.csv, atomic, fsync-ed);
* the journal append per case;
* the steady-state share of the report rewrites (the throttle rewrites every max(5 s, 50 x one write)), and
  the whole reporting share of a run whose cases take 1 s (a small hippocampus crop on this CPU) or 10 s.

    python scripts/bench_report.py [--cases 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from app.batch.journal import RunJournal
from app.batch.live_report import LiveReport
from app.batch.records import CaseRecord, OutputFile


def make_records(n: int) -> list[CaseRecord]:
    records = []
    for i in range(n):
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        case_id = f"{digest[:8]}_{i % 20}_{digest[8:16]}"
        uid = f"1.2.826.0.1.3680043.8.498.{int(digest[:24], 16)}"
        files = [f"/archive/study_{i:06d}/series_{i % 20}/IM_{k:04d}.dcm" for k in range(200)]
        record = CaseRecord(
            case_id,
            "dicom",
            f"/archive/study_{i:06d}/series_{i % 20}",
            files,
            series={
                "study_instance_uid": uid + ".1",
                "series_instance_uid": uid + ".2",
                "series_number": i % 20,
                "series_description": "T1 MPRAGE SAG",
                "modality": "MR",
            },
            status="ok",
            outputs=[
                OutputFile("nifti", f"/out/{case_id}/{case_id}_seg.nii.gz", 41234, digest),
                OutputFile("seg", f"/out/{case_id}/{case_id}_seg.dcm", 912345, digest[::-1]),
            ],
            seg={"series_instance_uid": uid + ".3", "sop_instance_uid": uid + ".4", "series_number": 9003},
            timings_s={"load": 0.41, "inference": 0.93, "write": 0.12, "total": 1.46},
        )
        records.append(record)
    return records


def provenance() -> dict:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {"tool": "unetseg infer", "started": now, "finished": now, "options": {}}


def measure(n: int) -> dict[str, float]:
    records = make_records(n)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        with RunJournal(out) as journal:
            pending = [CaseRecord(r.case_id, r.kind, r.input, r.input_files, r.series) for r in records]
            live = LiveReport(out, pending, [], provenance, journal)
            started = time.perf_counter()
            live.write("complete")
            one_write = time.perf_counter() - started
            live.writes, live.write_seconds = 0, 0.0
            started = time.perf_counter()
            for i, record in enumerate(records):
                pending[i] = record
                live.case_done(record)
            live.write("complete")
            total = time.perf_counter() - started
        journal_mb = (out / "journal.jsonl").stat().st_size / 1e6
        report_mb = (out / "report.json").stat().st_size / 1e6
    journal_per_case = (total - live.write_seconds) / n
    # In a real run time passes between cases: the report is rewritten every max(interval, cost_factor * w)
    # seconds, so its steady-state share of the run is w / (w + that pause), whatever the case time.
    rewrite_share = one_write / (one_write + max(live.interval_s, live.cost_factor * one_write))
    return {
        "cases": n,
        "write_s": one_write,
        "report_mb": report_mb,
        "journal_mb": journal_mb,
        "journal_ms": journal_per_case * 1e3,
        "rewrite_share": rewrite_share,
        "share_1s": rewrite_share + journal_per_case / 1.0,
        "share_10s": rewrite_share + journal_per_case / 10.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[1000, 10000, 100000])
    args = parser.parse_args()
    print(
        "| cases | one report write (s) | report.json (MB) | journal (MB) | journal append per case (ms) "
        "| report rewrites, share of the run | reporting share, 1 s cases | reporting share, 10 s cases |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.cases:
        r = measure(n)
        print(
            f"| {r['cases']:,} | {r['write_s']:.2f} | {r['report_mb']:.1f} | {r['journal_mb']:.1f} "
            f"| {r['journal_ms']:.3f} | {100 * r['rewrite_share']:.2f} % | {100 * r['share_1s']:.2f} % "
            f"| {100 * r['share_10s']:.2f} % |"
        )


if __name__ == "__main__":
    main()
