"""Pairing predictions with references (and images) by case id."""

from __future__ import annotations

from pathlib import Path

from app.evaluation.pairing import case_id, pair_files, pair_images


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_case_id_strips_known_extensions_and_suffixes():
    assert case_id(Path("a/hippocampus_001.nii.gz")) == "hippocampus_001"
    assert case_id(Path("x.NII")) == "x"
    assert case_id(Path("x.tiff")) == "x"
    assert case_id(Path("hippocampus_001_seg.nii.gz"), suffixes=("_seg",)) == "hippocampus_001"
    assert case_id(Path("_seg.nii.gz"), suffixes=("_seg",)) == "_seg"  # never an empty id


def test_seg_suffix_flat_and_folder_per_case_layouts(tmp_path):
    refs = [touch(tmp_path / "ref" / f"case_{i}.nii.gz") for i in range(4)]
    touch(tmp_path / "pred" / "case_0_seg.nii.gz")  # _seg suffix
    touch(tmp_path / "pred" / "case_1.nii.gz")  # same name
    touch(tmp_path / "pred" / "case_2" / "case_2_seg.nii.gz")  # folder per case
    touch(tmp_path / "pred" / "notes.txt")  # ignored
    touch(tmp_path / "pred" / "stray_seg.nii.gz")  # no reference
    pairing = pair_files(tmp_path / "pred", tmp_path / "ref")
    by_id = {p.case_id: p for p in pairing.pairs}
    assert [p.case_id for p in pairing.pairs] == ["case_0", "case_1", "case_2", "case_3"]
    assert by_id["case_0"].pred.name == "case_0_seg.nii.gz"
    assert by_id["case_1"].pred.name == "case_1.nii.gz"
    assert by_id["case_2"].pred == tmp_path / "pred" / "case_2" / "case_2_seg.nii.gz"
    assert by_id["case_3"].ref == refs[3]
    # the reference without a prediction is kept as a pair with pred=None (a failed case, not dropped)
    assert by_id["case_3"].pred is None
    assert pairing.missing_predictions == ["case_3"]
    assert [(p.name, reason) for p, reason in pairing.unused] == [
        ("stray_seg.nii.gz", "no reference with this case id")
    ]


def test_references_that_carry_seg_suffixes_pair_exactly(tmp_path):
    touch(tmp_path / "ref" / "liver_seg.nrrd")
    touch(tmp_path / "pred" / "liver_seg.nii.gz")
    [pair] = pair_files(tmp_path / "pred", tmp_path / "ref").pairs
    assert pair.case_id == "liver_seg" and pair.pred.name == "liver_seg.nii.gz"


def test_duplicate_predictions_prefer_nifti_and_report_the_other(tmp_path):
    touch(tmp_path / "ref" / "c.nii.gz")
    touch(tmp_path / "pred" / "c" / "c_seg.dcm")
    touch(tmp_path / "pred" / "c" / "c_seg.nii.gz")
    pairing = pair_files(tmp_path / "pred", tmp_path / "ref")
    assert pairing.pairs[0].pred.name == "c_seg.nii.gz"
    assert [p.name for p, _ in pairing.unused] == ["c_seg.dcm"]


def test_an_infer_case_folder_pairs_its_label_map_and_skips_the_runs_other_outputs(tmp_path):
    """In OUT/<case>/ of an infer run (it holds case.json) the preview and the DICOM SEG beside the NIfTI are that
    run's other outputs, not unused predictions; the same files in a folder no run completed are still listed."""
    touch(tmp_path / "ref" / "c.nii.gz")
    touch(tmp_path / "ref" / "em.png")
    for folder, names in {
        "c": ("case.json", "c_seg.nii.gz", "c_seg.dcm", "preview.png", "statistics.json"),
        "em": ("case.json", "em_seg.png", "preview.png", "statistics.json"),
    }.items():
        for name in names:
            touch(tmp_path / "run" / folder / name)
    pairing = pair_files(tmp_path / "run", tmp_path / "ref")
    assert [(p.case_id, p.pred.name) for p in pairing.pairs] == [("c", "c_seg.nii.gz"), ("em", "em_seg.png")]
    assert pairing.unused == []
    # a DICOM case whose only label file is the SEG: the SEG is its prediction
    (tmp_path / "run" / "c" / "c_seg.nii.gz").unlink()
    [pair, _] = pair_files(tmp_path / "run", tmp_path / "ref").pairs
    assert pair.pred.name == "c_seg.dcm"
    # without case.json the folder is no infer output: both files are reported
    (tmp_path / "run" / "em" / "case.json").unlink()
    pairing = pair_files(tmp_path / "run", tmp_path / "ref")
    assert [(p.name, reason) for p, reason in pairing.unused] == [
        ("preview.png", "no reference with this case id")
    ]


def test_two_files_pair_whatever_their_names(tmp_path):
    ref = touch(tmp_path / "reference.nii.gz")
    pred = touch(tmp_path / "output.nrrd")
    [pair] = pair_files(pred, ref).pairs
    assert (pair.case_id, pair.pred, pair.ref) == ("reference", pred, ref)


def test_images_pair_with_nnunet_channel_suffix(tmp_path):
    touch(tmp_path / "img" / "a_0000.nii.gz")
    touch(tmp_path / "img" / "b.nii.gz")
    found = pair_images(tmp_path / "img", ["a", "b", "c"])
    assert {k: v.name for k, v in found.items()} == {"a": "a_0000.nii.gz", "b": "b.nii.gz"}


def test_predictions_of_nnunet_layout_images_pair_with_their_references(tmp_path):
    """nnU-Net's imagesTs/<case>_0000.nii.gz and labelsTs/<case>.nii.gz: infer names the prediction
    <case>_0000_seg (flat or folder per case); it pairs with <case>, and an exact id still wins."""
    touch(tmp_path / "ref" / "a.nii.gz")
    touch(tmp_path / "ref" / "b.nii.gz")
    touch(tmp_path / "ref" / "c_0000.nii.gz")  # a reference that itself carries the suffix pairs exactly
    touch(tmp_path / "pred" / "a_0000" / "a_0000_seg.nii.gz")
    touch(tmp_path / "pred" / "b_0000.nii.gz")
    touch(tmp_path / "pred" / "c_0000_seg.nii.gz")
    pairing = pair_files(tmp_path / "pred", tmp_path / "ref")
    assert {p.case_id: p.pred.name for p in pairing.pairs} == {
        "a": "a_0000_seg.nii.gz",
        "b": "b_0000.nii.gz",
        "c_0000": "c_0000_seg.nii.gz",
    }
    assert pairing.unused == [] and pairing.missing_predictions == []
