"""--shard K/N covers the case list exactly once; `unetseg report OUT` rebuilds one report from what is on disk."""

from __future__ import annotations

import json
import shutil

import pytest

from app.batch import BatchConfig, run_batch
from app.batch.rebuild import rebuild_report
from app.batch.shard import Shard
from app.cli.main import main
from app.errors import InputError


def test_shards_partition_any_case_list():
    ids = [f"case_{i:05d}" for i in range(3000)]
    shards = [Shard(k, 3) for k in (1, 2, 3)]
    owners = [[s for s in shards if s.takes(i)] for i in ids]
    assert all(len(o) == 1 for o in owners)
    sizes = [sum(s.takes(i) for i in ids) for s in shards]
    assert min(sizes) > 900  # balanced within noise
    assert Shard.parse(" 2/3 ") == Shard(2, 3) and Shard(2, 3).suffix == "-shard-2-of-3"
    for bad in ("0/3", "4/3", "1/0", "x", "1-3"):
        with pytest.raises(InputError):
            Shard.parse(bad)


@pytest.fixture(scope="module")
def sharded_out(toy_bundle, demo_data, tmp_path_factory):
    """The demo DICOM tree (3 series) and the 3 demo NIfTI cases plus one broken file, run as 3 shards."""
    root = tmp_path_factory.mktemp("inputs")
    shutil.copytree(demo_data / "dicom", root / "dicom")
    shutil.copytree(demo_data / "hippocampus" / "images", root / "nifti")
    (root / "nifti" / "broken.nii.gz").write_bytes(b"not a NIfTI")
    out = tmp_path_factory.mktemp("out")
    results = [
        run_batch(BatchConfig(inputs=(root,), bundle=toy_bundle, out=out, device="cpu", shard=Shard(k, 3)))
        for k in (1, 2, 3)
    ]
    return root, out, results


def test_three_shards_cover_every_case_exactly_once(sharded_out):
    _, out, results = sharded_out
    ids = [r.case_id for result in results for r in result.records]
    assert len(ids) == len(set(ids)) == 7
    for k in (1, 2, 3):
        report = json.loads((out / f"report-shard-{k}-of-3.json").read_text())
        assert report["state"] == "complete"
        assert (out / f"journal-shard-{k}-of-3.jsonl").is_file()
    assert not (out / "report.json").exists()


def test_report_command_joins_the_shards(sharded_out, capsys):
    _, out, results = sharded_out
    assert main(["report", str(out)]) == 1  # the broken file failed
    printed = capsys.readouterr().out
    assert (
        "7 case(s): 6 ok, 0 partial, 1 failed, 0 never finished; from 3 journal(s) and 6 case.json file(s)"
        in printed
    )
    report = json.loads((out / "report.json").read_text())
    assert report["state"] == "complete"
    by_id = {c["case_id"]: c for c in report["cases"]}
    expected = {r.case_id: r.status for result in results for r in result.records}
    assert {k: v["status"] for k, v in by_id.items()} == expected
    assert by_id["broken"]["reason"].startswith("InputError")
    assert any(d["subject"] == "series" for d in report["discovery"])


def test_report_after_a_crash_lists_unfinished_cases_as_pending(sharded_out, tmp_path):
    """A run killed right after it started: its journal holds only the run entry (the cases it meant to try);
    one case had finished (its case.json is there)."""
    _, out, results = sharded_out
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    run_line = (out / "journal-shard-1-of-3.jsonl").read_text().splitlines()[0]
    assert json.loads(run_line)["type"] == "run"
    (crashed / "journal.jsonl").write_text(run_line + "\n")
    shard_1 = [r for r in results[0].records]
    finished = next(r for r in shard_1 if r.status == "ok")
    shutil.copytree(out / finished.case_id, crashed / finished.case_id)
    rebuilt = rebuild_report(crashed)
    assert rebuilt.report["state"] == "incomplete"
    statuses = {c["case_id"]: c["status"] for c in rebuilt.report["cases"]}
    # the other shards' cases were discovered by this run too: with their shards never run, they are pending
    every_case = [r for result in results for r in result.records]
    assert statuses == {r.case_id: "ok" if r is finished else "pending" for r in every_case}
    # a case that never finished still names its input and kind, from the discovery decision that took it
    by_id = {c["case_id"]: c for c in rebuilt.report["cases"]}
    for record in every_case:
        assert (by_id[record.case_id]["input"], by_id[record.case_id]["kind"]) == (record.input, record.kind)


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "nothing to rebuild a report from" in capsys.readouterr().err
