"""``unetseg evaluate`` end to end on real labels: files in, metrics.csv / summary.json / report.html out."""

from __future__ import annotations

import csv
import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from app.cli.main import main

CASES = ("hippocampus_001", "hippocampus_003", "hippocampus_004", "hippocampus_006")


@pytest.fixture
def hippocampus_run(tmp_path, hippocampus_labels, save_nifti):
    """References for 4 cases; predictions: eroded (folder per case), shifted (_seg), missed label, none."""
    ref_dir, pred_dir = tmp_path / "ref", tmp_path / "pred"
    ref_dir.mkdir()
    for number, case in enumerate(CASES):
        source = hippocampus_labels / f"{case}.nii.gz"
        shutil.copy(source, ref_dir / source.name)
        image = nib.load(str(source))
        label = np.asanyarray(image.dataobj)
        if number == 0:
            pred = np.where(ndimage.binary_erosion(label > 0), label, 0)
            save_nifti(pred_dir / case / f"{case}_seg.nii.gz", pred.astype(np.uint8), image.affine)
        elif number == 1:
            save_nifti(pred_dir / f"{case}_seg.nii.gz", np.roll(label, 2, axis=0), image.affine)
        elif number == 2:
            save_nifti(pred_dir / f"{case}.nii.gz", np.where(label == 1, 1, 0).astype(np.uint8), image.affine)
        # number 3: no prediction at all
    return tmp_path


def test_cli_end_to_end_on_hippocampus(hippocampus_run, hippocampus_labels, capsys):
    out = hippocampus_run / "out"
    code = main(
        [
            "evaluate",
            "--pred",
            str(hippocampus_run / "pred"),
            "--ref",
            str(hippocampus_run / "ref"),
            "--out",
            str(out),
            "--labels",
            "anterior=1,posterior=2",
            "--images",
            str(hippocampus_labels.parent / "imagesTr"),
            "--worst",
            "2",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2  # reports written, one case failed (no prediction)
    assert "1 reference(s) have no prediction and count as misses" in captured.err
    assert captured.err.count("hippocampus_006") == 1  # named once, in the summary line
    assert "anterior: Dice" in captured.out

    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 8  # 4 cases x 2 labels: the case without a prediction is not dropped
    flags = {(r["case_id"], r["name"]): r["flag"] for r in rows}
    assert flags[("hippocampus_004", "posterior")] == "missed"
    assert flags[("hippocampus_006", "anterior")] == "no_prediction"
    assert flags[("hippocampus_001", "anterior")] == "ok"
    assert (
        float(next(r for r in rows if r["case_id"] == "hippocampus_004" and r["label"] == "1")["dice"]) == 1.0
    )

    summary = json.loads((out / "summary.json").read_text())
    posterior = summary["labels"]["posterior"]
    assert (
        posterior["n"] == 4 and posterior["flags"]["missed"] == 1 and posterior["flags"]["no_prediction"] == 1
    )
    dices = [float(r["dice"]) for r in rows if r["name"] == "posterior"]
    assert posterior["metrics"]["dice"]["mean"] == pytest.approx(np.mean(dices))
    provenance = summary["provenance"]
    assert set(provenance["versions"]) >= {"unetseg", "monai", "torch", "numpy"}
    assert provenance["tolerance_mm"] == 1.0 and "both_empty" in provenance["policy"]
    assert provenance["units"] == {"distance": "mm", "volume": "mL"}  # NIfTI references: a physical grid
    assert "mm, n=" in captured.out
    assert provenance["labels"] == {"1": "anterior", "2": "posterior"}
    assert summary["failures"][0]["case_id"] == "hippocampus_006"

    html = (out / "report.html").read_text()
    assert "HD95 (mm)" in html and "Vol ref (mL)" in html
    assert html.count("data:image/png;base64,") == 2 + 2  # two distributions, two worst cases
    assert "hippocampus_004" in html and "no_prediction" in html
    assert "http://" not in html and "https://" not in html  # self-contained
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_cli_single_pair_grid_mismatch_names_both_files(tmp_path, save_nifti, capsys):
    label = np.zeros((8, 8, 8), np.uint8)
    label[2:6, 2:6, 2:6] = 1
    ref = save_nifti(tmp_path / "r.nii.gz", label)
    moved = np.eye(4)
    moved[0, 3] = 3.0
    pred = save_nifti(tmp_path / "p.nii.gz", label, moved)
    code = main(["evaluate", "--pred", str(pred), "--ref", str(ref), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(pred) in err and str(ref) in err and "--resample" in err

    # --resample puts the prediction on the reference grid: the 3 mm shift remains, measured in mm
    code = main(
        ["evaluate", "--pred", str(pred), "--ref", str(ref), "--out", str(tmp_path / "out"), "--resample"]
    )
    assert code == 0
    [row] = list(csv.DictReader((tmp_path / "out" / "metrics.csv").open()))
    assert row["flag"] == "ok" and float(row["hd_mm"]) == pytest.approx(3.0)
    # the prediction's cube covers x = 5..8 mm; the reference grid ends at x = 7, so 3 x 4 x 4 = 48 voxels
    # survive resampling; overlap with the reference cube (x = 2..5): 1 x 4 x 4 = 16 -> 32 / (64 + 48)
    assert float(row["dice"]) == pytest.approx(32 / 112)
    assert float(row["volume_pred_ml"]) == pytest.approx(0.048)


def test_cli_folder_grid_mismatch_is_recorded_per_case(tmp_path, save_nifti, capsys):
    label = np.zeros((8, 8, 8), np.uint8)
    label[2:6, 2:6, 2:6] = 1
    save_nifti(tmp_path / "ref" / "a.nii.gz", label)
    save_nifti(tmp_path / "ref" / "b.nii.gz", label)
    save_nifti(tmp_path / "pred" / "a.nii.gz", label)
    save_nifti(tmp_path / "pred" / "b.nii.gz", label[:, :, :7])
    code = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "pred"),
            "--ref",
            str(tmp_path / "ref"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert "b.nii.gz" in capsys.readouterr().err
    rows = {r["case_id"]: r for r in csv.DictReader((tmp_path / "out" / "metrics.csv").open())}
    assert rows["a"]["flag"] == "ok" and rows["b"]["flag"] == "error"
    assert "not on the grid" in rows["b"]["message"]


def test_cli_bundle_labels_on_2d_em_pngs(tmp_path, shared_data, capsys):
    # ISBI 2012 EM labels: 0 = membrane, 255 = cell. A bundle whose channel 0 is "membrane" evaluates it.
    labels = sorted((shared_data / "isbi2012-em" / "train" / "label").glob("*.png"))[:2]
    if not labels:
        pytest.skip("ISBI EM labels not found")
    (tmp_path / "ref").mkdir()
    (tmp_path / "pred").mkdir()
    for path in labels:
        picture = np.asarray(Image.open(path))
        shutil.copy(path, tmp_path / "ref" / path.name)
        grown = np.where(ndimage.binary_dilation(picture == 0), 0, 255).astype(np.uint8)
        Image.fromarray(grown).save(tmp_path / "pred" / f"{path.stem}_seg.png")
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    channel_def = {"0": "membrane", "255": "cell"}
    (bundle / "configs" / "metadata.json").write_text(
        json.dumps(
            {"version": "0.3.1", "network_data_format": {"outputs": {"pred": {"channel_def": channel_def}}}}
        )
    )
    code = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "pred"),
            "--ref",
            str(tmp_path / "ref"),
            "--out",
            str(tmp_path / "out"),
            "--bundle",
            str(bundle),
            "--worst",
            "1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    membrane = summary["labels"]["membrane"]["metrics"]
    assert 0.5 < membrane["dice"]["mean"] < 1.0 and membrane["precision"]["mean"] < 1.0
    assert membrane["recall"]["mean"] == pytest.approx(1.0)  # dilation keeps every membrane pixel
    assert summary["labels"]["cell"]["metrics"]["precision"]["mean"] == pytest.approx(1.0)
    assert summary["provenance"]["inputs"]["bundle_version"] == "0.3.1"

    # membrane + cell labels: the ISBI 2012 scores per slice, as the bundle's evaluator computes them
    from app.evaluation.em import adapted_rand_error, pixel_error, pixel_fscore_error

    expected_rand, expected_pixel, expected_fscore = [], [], []
    for path in labels:
        truth = np.asarray(Image.open(path)) == 255
        pred = np.asarray(Image.open(tmp_path / "pred" / f"{path.stem}_seg.png")) == 255
        expected_rand.append(adapted_rand_error(pred, truth))
        expected_pixel.append(pixel_error(pred, truth))
        expected_fscore.append(pixel_fscore_error(pred, truth))
    em = summary["em"]
    assert em["cell_label"] == 255 and em["n"] == 2 and em["flags"] == {"ok": 2}
    assert em["metrics"]["rand_error"]["mean"] == pytest.approx(np.mean(expected_rand))
    assert em["metrics"]["pixel_error"]["mean"] == pytest.approx(np.mean(expected_pixel))
    assert em["metrics"]["pixel_fscore_error"]["mean"] == pytest.approx(np.mean(expected_fscore))
    assert 0 < np.mean(expected_fscore) < np.mean(expected_pixel)  # errors counted against cell pixels only
    assert 0 < em["metrics"]["rand_error"]["mean"] < em["metrics"]["rand_error_membrane_segment"]["mean"]
    rows = list(csv.DictReader((tmp_path / "out" / "em_metrics.csv").open()))
    assert [r["case_id"] for r in rows] == [p.stem for p in labels]
    assert float(rows[0]["rand_error"]) == pytest.approx(expected_rand[0])
    html = (tmp_path / "out" / "report.html").read_text()
    assert "EM membrane scores" in html and "1 - F-score of cell pixels" in html
    # PNG references carry no spacing: distances and volumes are in pixels, and say so
    assert summary["provenance"]["units"] == {"distance": "px", "volume": "1000 px"}
    assert "HD95 (px)" in html and "Vol ref (1000 px)" in html and "NSD tolerance 1 px" in html
    assert "(mm)" not in html and "(mL)" not in html
    assert float(rows[0]["pixel_fscore_error"]) == pytest.approx(expected_fscore[0])
    printed = capsys.readouterr().out
    assert "EM (n=2): adapted Rand error" in printed and "1 - F-score of cell pixels" in printed
    assert "px, n=2" in printed and " mm" not in printed


def test_em_scores_give_a_case_without_prediction_the_worst_score(tmp_path):
    from app.evaluation.runner import evaluate_folders

    (tmp_path / "ref").mkdir()
    (tmp_path / "pred").mkdir()
    cells = np.full((32, 32), 255, np.uint8)
    cells[:, 15:17] = 0  # two cells split by a 2-px membrane
    for name in ("a", "b"):
        Image.fromarray(cells).save(tmp_path / "ref" / f"{name}.png")
    Image.fromarray(cells).save(tmp_path / "pred" / "a.png")  # "b" has no prediction
    from app.reporting.evaluation_reports import write_evaluation_reports

    run = evaluate_folders(tmp_path / "pred", tmp_path / "ref", labels={0: "Membrane", 255: "Cell"})
    write_evaluation_reports(run, tmp_path / "out")
    em = run.summary.em
    assert em is not None and em.flags == {"no_prediction": 1, "ok": 1}
    assert em.metrics["rand_error"].mean == pytest.approx(0.5)  # 0 for "a", the worst 1.0 for "b"
    rows = {r["case_id"]: r for r in csv.DictReader((tmp_path / "out" / "em_metrics.csv").open())}
    assert rows["b"]["flag"] == "no_prediction" and float(rows["b"]["pixel_error"]) == 1.0
    assert float(rows["b"]["pixel_fscore_error"]) == 1.0
    # other label names: no EM scores
    plain = evaluate_folders(tmp_path / "pred", tmp_path / "ref", labels={255: "foreground"})
    assert plain.summary.em is None and "em" not in plain.summary.to_dict()
