"""The real MONAI Label server over HTTP, in the label environment (``.venv-label``), on a free loopback port.

One server serves both bundles from one datastore: three hippocampus volumes (NIfTI) and three ISBI 2012 EM
slices (PNG), all labelled. Checks ``/info`` (both models, label names from channel_def; the EM labels carry the
values of the bundle's PNG output, membrane 0 and cell 255), ``/infer`` on real images against the bundle's own
``python -m monai.bundle run`` inference (run here, in the main environment, on the served weights: Dice >= 0.99
per label; for EM on the datastore id and on an uploaded PNG), refusal of ids and tags with ``../`` and of an
image of the wrong dimension, and ``/train`` of each bundle: a two-epoch run on the datastore's labelled images
of the bundle's dimension writes new served weights, ``/info`` reports them, inference then agrees with the
bundle's inference on those new weights, and the repository's weights are not the trained ones.

The EM tests skip while the repository's EM bundle has no ``models/model.pt`` (it is written only when a
training run's validation improves), since the server then does not serve it for inference.

Requests other than GET carry the server's token (``<model_dir>/server_token``, made by ``unetseg serve``); what
the server refuses without it is checked in ``test_server_security.py``.

Skipped when the label environment is absent; ``.ci/run`` builds it and runs ``pytest -m slow tests/label_server``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from http_helpers import free_port, multipart, request
from PIL import Image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LABEL_PYTHON = Path(os.environ.get("UNETSEG_LABEL_PYTHON", ROOT / ".venv-label" / "bin" / "python"))
MODEL = "hippocampus_mri_segmentation"
CASES = ("hippocampus_001", "hippocampus_003", "hippocampus_004")
EM_MODEL = "em_membrane_segmentation"
#: ISBI 2012 training slices 20-22 (the EM bundle's validation slices), stored under these ids; the first is
#: inferred. Three, so that a training run has two (one batch) to train on and one to validate on
EM_SLICES = (20, 21, 22)
EM_CASE = f"isbi2012_train_{EM_SLICES[0]}"
#: the EM bundle's label image values (SaveImaged scale 255): membrane (class 0) 0, cell (class 1) 255
EM_LABELS = {"membrane": 0, "cell": 255}
STARTUP_S = 240
TRAIN_S = 600


_request = functools.partial(request, timeout=300)


def _dice_per_label(a: np.ndarray, b: np.ndarray, labels) -> dict[int, float]:
    out = {}
    for value in labels:
        x, y = a == value, b == value
        total = int(x.sum() + y.sum())
        out[value] = 1.0 if total == 0 else 2.0 * int((x & y).sum()) / total
    return out


def _bundle_inference(bundle_root: Path, image: Path, out: Path, model: str = MODEL) -> Path:
    """The bundle's own inference (``monai.bundle run``) of ``image`` with ``bundle_root``'s weights.

    Returns the one file the bundle's ``SaveImaged`` wrote (``<stem>/<stem>_seg.nii.gz`` for the hippocampus
    bundle, ``<stem>_seg.png`` for the EM bundle).
    """
    inputs = out / "in"
    inputs.mkdir(parents=True)
    shutil.copy(image, inputs / image.name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            str(ROOT / "bundles" / model / "configs" / "inference.json"),
            "--bundle_root",
            str(bundle_root),
            "--dataset_dir",
            str(inputs),
            "--output_dir",
            str(out / "out"),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
        timeout=600,
    )
    written = sorted((out / "out").rglob("*_seg.*"))
    assert len(written) == 1, written
    return written[0]


@pytest.fixture(scope="module")
def server(shared_data, tmp_path_factory):
    """A running server: ``{"url", "studies", "served", "served_em", "log", "work"}``; stopped (with its training
    children) at the end."""
    if not LABEL_PYTHON.is_file():
        pytest.skip(f"MONAI Label environment not found at {LABEL_PYTHON} (see docs/monai_label.md)")
    probe = subprocess.run([str(LABEL_PYTHON), "-c", "import monailabel"], capture_output=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"{LABEL_PYTHON} cannot import monailabel")

    work = tmp_path_factory.mktemp("label_server")
    studies = work / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    source = shared_data / "msd-hippocampus"
    for case in CASES:
        shutil.copy(source / "imagesTr" / f"{case}.nii.gz", studies)
        shutil.copy(source / "labelsTr" / f"{case}.nii.gz", studies / "labels" / "final")
    isbi = shared_data / "isbi2012-em" / "train"
    for n in EM_SLICES:
        shutil.copy(isbi / "image" / f"{n}.png", studies / f"isbi2012_train_{n}.png")
        shutil.copy(isbi / "label" / f"{n}.png", studies / "labels" / "final" / f"isbi2012_train_{n}.png")
    model_dir = work / "model"
    port = free_port()
    log = work / "server.log"
    cmd = [
        str(LABEL_PYTHON),
        "-m",
        "app.cli.main",
        "serve",
        "--studies",
        str(studies),
        "--port",
        str(port),
        "--model-dir",
        str(model_dir),
        "--models",
        f"{MODEL},{EM_MODEL}",
        "--python",
        str(LABEL_PYTHON),
    ]
    with open(log, "wb") as log_fh:
        # own session: the server, and the training processes it starts, are stopped together; niced because
        # the machine is shared
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: os.nice(10),
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                status, _, _ = _request(f"{url}/info/", timeout=5)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no /info/ after {STARTUP_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(2)
        yield {
            "url": url,
            "token": (model_dir / "server_token").read_text().strip(),  # made by `unetseg serve`
            "studies": studies,
            "served": model_dir / MODEL,
            "served_em": model_dir / EM_MODEL,
            "log": log,
            "work": work,
        }
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def _auth(server, headers: dict | None = None) -> dict:
    """``headers`` plus the server's token: every request but a GET needs it (app/label_server/guard.py)."""
    return {**(headers or {}), "Authorization": f"Bearer {server['token']}"}


def _info(server) -> dict:
    status, _, body = _request(f"{server['url']}/info/")
    assert status == 200
    return json.loads(body)


def _infer(server, image_id: str, dest: Path, model: str = MODEL) -> Path:
    status, _, body = _request(
        f"{server['url']}/infer/{model}?image={image_id}&output=image",
        method="POST",
        body=b"",
        headers=_auth(server),
    )
    assert status == 200, body[:500]
    dest.write_bytes(body)
    return dest


def _em_served(server) -> dict:
    """``/info``'s entry of the EM model; skips when the server does not serve it (no weights yet)."""
    models = _info(server)["models"]
    if EM_MODEL not in models:
        pytest.skip(f"{EM_MODEL} is not served for inference: its bundle has no models/model.pt yet")
    return models[EM_MODEL]


def _upload(server, model: str, image: Path, dest: Path) -> Path:
    """``/infer`` of an uploaded file (multipart ``file``), the label written to ``dest``."""
    body, form = multipart("file", image.name, image.read_bytes())
    status, _, reply = _request(
        f"{server['url']}/infer/{model}?output=image",
        method="POST",
        body=body,
        headers=_auth(server, form),
    )
    assert status == 200, reply[:500]
    dest.write_bytes(reply)
    return dest


def test_info_lists_the_bundle_with_channel_def_labels(server):
    info = _info(server)
    assert MODEL in info["models"] and set(info["models"]) <= {MODEL, EM_MODEL}
    assert info["models"][MODEL]["labels"] == {"anterior": 1, "posterior": 2}
    assert info["models"][MODEL]["type"] == "segmentation"
    assert MODEL in info["trainers"]
    weights = info["models"][MODEL]["weights"]
    assert Path(weights["weights"]).parent.parent == server["served"]
    assert weights["trained_here"] is False


@pytest.mark.parametrize("case", CASES[:2])
def test_infer_agrees_with_the_bundles_own_inference(server, case, tmp_path):
    served = _infer(server, case, tmp_path / f"{case}_server.nii.gz")
    reference = _bundle_inference(server["served"], server["studies"] / f"{case}.nii.gz", tmp_path / "bundle")
    got, ref = nib.load(served), nib.load(reference)
    src = nib.load(server["studies"] / f"{case}.nii.gz")
    assert got.shape == ref.shape == src.shape
    np.testing.assert_allclose(got.affine, src.affine, atol=1e-4)
    a, b = np.asarray(got.dataobj).astype(np.int16), np.asarray(ref.dataobj).astype(np.int16)
    dice = _dice_per_label(a, b, (1, 2))
    print(f"{case}: Dice server vs bundle {dice}; voxels differing {int((a != b).sum())} of {a.size}")
    assert min(dice.values()) >= 0.99, dice
    assert set(np.unique(a)) <= {0, 1, 2} and (a > 0).any()


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("POST", f"/infer/{MODEL}?image=../studies/{CASES[0]}&output=json", None),
        ("POST", f"/infer/{MODEL}?image=/etc/passwd&output=json", None),
        ("PUT", "/datastore/label?image=../outside&tag=final", "label"),
        ("PUT", f"/datastore/label?image={CASES[0]}&tag=../../outside", "label"),
        ("PUT", "/datastore/?image=../outside", "file"),
    ],
)
def test_ids_and_tags_with_dotdot_are_refused(server, method, path, field):
    body, headers = b"", {}
    if field:
        body, headers = multipart(field, "x.nii.gz", (server["studies"] / f"{CASES[0]}.nii.gz").read_bytes())
    status, _, reply = _request(
        server["url"] + path, method=method, body=body, headers=_auth(server, headers)
    )
    assert status == 400, reply[:300]
    assert b"refused" in reply
    assert not list(server["work"].rglob("outside*"))


@pytest.mark.parametrize(("model", "image"), [(MODEL, EM_CASE), (EM_MODEL, CASES[0])])
def test_an_image_of_the_other_dimension_is_refused(server, model, image):
    if model == EM_MODEL:
        _em_served(server)
    status, _, reply = _request(
        f"{server['url']}/infer/{model}?image={image}&output=image",
        method="POST",
        body=b"",
        headers=_auth(server),
    )
    assert status == 400, reply[:300]
    assert b"segments" in reply and image.encode() in reply


def _train(server, model: str) -> dict:
    """A two-epoch ``/train`` of ``model`` on the datastore, waited for; MONAI Label's task status at the end."""
    status, _, body = _request(
        f"{server['url']}/train/{model}",
        method="POST",
        body=json.dumps({"max_epochs": 2, "val_split": 0.34}).encode(),
        headers=_auth(server, {"Content-Type": "application/json"}),
    )
    assert status == 200, body[:500]
    deadline = time.monotonic() + TRAIN_S
    while True:
        status, _, body = _request(f"{server['url']}/train/")
        task = json.loads(body)
        if task.get("status") in ("DONE", "ERROR", "STOPPED"):
            break
        assert time.monotonic() < deadline, task
        time.sleep(5)
    assert task["status"] == "DONE", "\n".join(task.get("details", []))
    return task


def test_train_writes_new_served_weights_that_inference_then_uses(server, tmp_path):
    repo_weights = ROOT / "bundles" / MODEL / "models" / "model.pt"
    before = _info(server)["models"][MODEL]["weights"]
    # load the model into the server first, so that the inference after training must reload it (the test does
    # not rely on an earlier test having run an inference)
    _infer(server, CASES[0], tmp_path / "before_train.nii.gz")
    _train(server, MODEL)
    # the EM slices' labels are in the same datastore: left out of the 3D bundle's training
    assert f"{server['served']} on {len(CASES)} labelled 3D images of the datastore ({len(EM_SLICES)} of" in (
        server["log"].read_text()
    )
    # the run's learning-rate schedule spans the requested epochs, not the bundle's full schedule
    assert re.search(r"> max_epochs: 2\b", server["log"].read_text())

    after = _info(server)["models"][MODEL]["weights"]
    print(
        f"served weights sha256 {before['sha256'][:16]} -> {after['sha256'][:16]}; modified {after['modified']}"
    )
    assert after["sha256"] != before["sha256"] and after["trained_here"] is True
    assert Path(after["weights"]).parent.parent == server["served"]
    from app.checksums import sha256_file as sha256

    assert sha256(repo_weights) != after["sha256"], "training wrote into the repository's bundle"

    served = _infer(server, CASES[0], tmp_path / "after_train.nii.gz")
    reference = _bundle_inference(
        server["served"], server["studies"] / f"{CASES[0]}.nii.gz", tmp_path / "bundle"
    )
    a = np.asarray(nib.load(served).dataobj).astype(np.int16)
    b = np.asarray(nib.load(reference).dataobj).astype(np.int16)
    dice = _dice_per_label(a, b, (1, 2))
    print(f"after training: Dice server vs bundle on the new weights {dice}")
    assert min(dice.values()) >= 0.99, dice
    assert "Reload model" in server["log"].read_text()


def test_info_lists_the_em_bundle_with_the_values_of_its_png_labels(server):
    em = _em_served(server)
    assert em["labels"] == EM_LABELS
    assert em["type"] == "segmentation" and em["dimension"] == 2
    assert Path(em["weights"]["weights"]).parent.parent == server["served_em"]
    assert em["weights"]["trained_here"] is False
    assert EM_MODEL in _info(server)["trainers"]


@pytest.mark.parametrize("how", ["datastore id", "upload"])
def test_em_infer_agrees_with_the_bundles_own_inference(server, how, tmp_path):
    _em_served(server)
    image = server["studies"] / f"{EM_CASE}.png"
    if how == "datastore id":
        served = _infer(server, EM_CASE, tmp_path / "server.png", model=EM_MODEL)
    else:
        served = _upload(server, EM_MODEL, image, tmp_path / "server.png")
    reference = _bundle_inference(server["served_em"], image, tmp_path / "bundle", model=EM_MODEL)
    assert reference.suffix == ".png"
    a, b = np.asarray(Image.open(served)), np.asarray(Image.open(reference))
    src = np.asarray(Image.open(image))
    assert a.shape == b.shape == src.shape and a.dtype == b.dtype == np.uint8
    values = tuple(EM_LABELS.values())
    dice = _dice_per_label(a, b, values)
    print(
        f"{EM_CASE} ({how}): Dice server vs bundle {dice}; pixels differing {int((a != b).sum())} of {a.size}"
    )
    assert min(dice.values()) >= 0.99, dice
    assert set(np.unique(a)) == set(values)  # both labels present, so the Dice of neither is trivially 1


def test_em_train_writes_new_served_weights_that_inference_then_uses(server, tmp_path):
    before = _em_served(server)["weights"]
    _train(server, EM_MODEL)
    assert (
        f"{server['served_em']} on {len(EM_SLICES)} labelled 2D images of the datastore ({len(CASES)} of"
        in (server["log"].read_text())
    )
    after = _info(server)["models"][EM_MODEL]["weights"]
    print(f"EM served weights sha256 {before['sha256'][:16]} -> {after['sha256'][:16]}")
    assert after["sha256"] != before["sha256"] and after["trained_here"] is True
    assert Path(after["weights"]).parent.parent == server["served_em"]
    from app.checksums import sha256_file as sha256

    repo_weights = ROOT / "bundles" / EM_MODEL / "models" / "model.pt"
    assert not repo_weights.is_file() or sha256(repo_weights) != after["sha256"]

    image = server["studies"] / f"{EM_CASE}.png"
    served = _infer(server, EM_CASE, tmp_path / "after_train.png", model=EM_MODEL)
    reference = _bundle_inference(server["served_em"], image, tmp_path / "bundle", model=EM_MODEL)
    a, b = np.asarray(Image.open(served)), np.asarray(Image.open(reference))
    dice = _dice_per_label(a, b, tuple(EM_LABELS.values()))
    print(f"EM after training: Dice server vs bundle on the new weights {dice}")
    assert min(dice.values()) >= 0.99, dice
