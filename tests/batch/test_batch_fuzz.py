"""The batch over seeded corruptions of real inputs (tests/fuzz_inputs.py, the loader's fuzz generator): every
copy is tried and reported, a damaged one is refused with a reason that names a file, none is an internal error,
and the copies whose damage must not matter come out ok."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from fuzz_inputs import DICOM_KINDS, mutate_dicom_series, nifti_mutants

from app.batch import BatchConfig, run_batch
from app.loading.options import ReadOptions

SERIES = ("dicom", "study_2", "series_3")


@pytest.fixture(scope="module")
def fuzz_tree(demo_data, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A tree of 2 mutated copies of a real DICOM series per mutation kind (each copy its own series, as
    distinct series of an archive are), and the NIfTI failure classes made from a real hippocampus case; returns
    the tree and ``{copy folder or file name: mutation kind}``."""
    import gzip

    import pydicom
    from pydicom.uid import generate_uid

    root = tmp_path_factory.mktemp("fuzz_tree")
    rng = random.Random(7)
    kinds = {}
    for i in range(2 * len(DICOM_KINDS)):
        clean = root / "clean" / f"copy_{i:03d}"
        clean.mkdir(parents=True)
        uid = generate_uid(entropy_srcs=[f"fuzz-series-{i}"])
        for path in sorted(demo_data.joinpath(*SERIES).iterdir()):
            ds = pydicom.dcmread(path)
            ds.SeriesInstanceUID = uid
            ds.save_as(clean / path.name)
        kind = list(DICOM_KINDS)[i % len(DICOM_KINDS)]
        kinds[clean.name] = mutate_dicom_series(clean, root / "tree" / "dicom" / clean.name, rng, kind).kind
    root = root / "tree"
    image = sorted((demo_data / "hippocampus" / "images").glob("*.nii.gz"))[0]
    good = gzip.decompress(image.read_bytes())
    for kind, (path, _) in nifti_mutants(good, root / "nifti", random.Random(7)).items():
        kinds[path.name] = kind
    return root, kinds


def test_every_corrupted_copy_is_reported_none_is_an_internal_error(toy_bundle, fuzz_tree, tmp_path):
    root, kinds = fuzz_tree
    result = run_batch(BatchConfig(inputs=(root,), bundle=toy_bundle, out=tmp_path, device="cpu"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["state"] == "complete" and report["counts"]["pending"] == 0
    assert result.exit_code in (0, 1)
    internal = [c for c in report["cases"] if c.get("failure") == "internal"]
    assert not internal, internal
    seen = {}
    for case in report["cases"]:
        source = Path(case["input"])
        name = source.name if source.name in kinds else source.parent.name
        seen.setdefault(name, []).append(case)
        if case["status"] == "failed":
            assert case["failure"] == "refused" and str(root) in case["reason"], case
    controls = [name for name, kind in kinds.items() if kind == "control"]
    for name in controls:
        assert seen[name] and all(c["status"] == "ok" for c in seen[name]), seen.get(name)
    for name in ("bomb.nii", "gzip_bomb.nii.gz"):
        assert seen[name][0]["status"] == "failed" and "exceeds the limit" in seen[name][0]["reason"]
    mixed = seen["qform_sform.nii"][0]
    assert mixed["status"] == "ok" and any("qform" in w for w in mixed["warnings"]), mixed
    # the DICOM copies that discovery kept are each a case; those it dropped are decisions in the report
    assert len({n for n in seen if n.startswith("copy_")}) >= len(controls)


def test_strict_orientation_refuses_the_disagreeing_nifti(toy_bundle, fuzz_tree, tmp_path):
    root, _ = fuzz_tree
    config = BatchConfig(
        inputs=(root / "nifti" / "qform_sform.nii",),
        bundle=toy_bundle,
        out=tmp_path,
        device="cpu",
        read=ReadOptions(strict_orientation=True),
    )
    result = run_batch(config)
    (case,) = json.loads((tmp_path / "report.json").read_text())["cases"]
    assert result.exit_code == 1 and case["failure"] == "refused" and "strict orientation" in case["reason"]


def test_cli_size_limit_refuses_a_real_case_over_it_and_is_recorded(toy_bundle, demo_data, tmp_path, capsys):
    from app.cli.main import main

    image = sorted((demo_data / "hippocampus" / "images").glob("*.nii.gz"))[0]
    args = ["infer", str(image), "--bundle", str(toy_bundle), "--out", str(tmp_path), "--device", "cpu"]
    assert main([*args, "--max-input-gib", "0.00001"]) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    (case,) = report["cases"]
    assert (
        case["failure"] == "refused"
        and "exceeds the limit of" in case["reason"]
        and image.name in case["reason"]
    )
    assert report["provenance"]["options"]["read"]["max_bytes"] == int(0.00001 * 2**30)
    assert "--max-input-gib" in report["provenance"]["command_line"]
    assert main([*args, "--max-input-gib", "0"]) == 2
    assert "--max-input-gib must be > 0" in capsys.readouterr().err
