"""What the MONAI Label server relies on, checked in the main environment without monailabel.

* every module the bundles' configs name (``_target_``, ``$import``, ``$app....`` expressions) imports with the
  DICOM stack and monailabel blocked, as in the label environment where pydicom is < 3 and highdicom absent;
* label names come from ``channel_def`` the way MONAI Label reads them;
* served copies: configs and weights copied, refreshed while untouched, kept once trained, repository untouched;
* ids, tags, file names and paths a client sends are refused when they could leave their folder;
* ``unetseg serve`` builds a loopback-bound ``monailabel start_server`` command behind the request guard.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from app.checksums import sha256_file as sha256
from app.errors import BundleError
from app.label_server.bundles import (
    bundle_dimension,
    discover_bundles,
    image_dimension,
    label_values,
    labels_from_metadata,
    prepare_served_copy,
    served_weights_stats,
)
from app.label_server.safety import (
    UnsafeNameError,
    check_infer_request,
    check_name,
    check_train_request,
)

ROOT = Path(__file__).resolve().parents[2]
BUNDLES = ROOT / "bundles"
HIPPO = "hippocampus_mri_segmentation"

#: the app's DICOM stack and MONAI Label: none of them may be needed to import what the bundles name
BLOCKED = ("pydicom", "highdicom", "pydicom_seg", "pylibjpeg", "pynetdicom", "dicomweb_client", "monailabel")

IMPORT_CHECK = r"""
import importlib, importlib.abc, json, sys

BLOCKED = set(json.loads(sys.argv[1]))
NAMES = json.loads(sys.argv[2])

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked import of {fullname}")
        return None

sys.meta_path.insert(0, Block())
failures = []
for name in NAMES:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # the tail is an attribute, not a module
            failures.append(f"{name}: {exc!r}")
            break
        except ImportError as exc:
            failures.append(f"{name}: {exc!r}")
            break
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError as exc:
            failures.append(f"{name}: {exc!r}")
        break
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({"failures": failures, "leaked": leaked}))
"""


def _names_in_configs() -> list[str]:
    """Every dotted ``app.`` name in every bundle's configs (targets, imports, expressions)."""
    names: set[str] = set()
    for config in BUNDLES.glob("*/configs/*.json"):
        names.update(re.findall(r"\bapp(?:\.[A-Za-z_][A-Za-z0-9_]*)+", config.read_text()))
    return sorted(names)


def test_bundle_modules_import_without_dicom_stack_or_monailabel():
    names = _names_in_configs()
    assert "app.networks.unet.ClassicUNet" in names  # the scan sees the hippocampus configs
    names += ["app.label_server.bundles", "app.label_server.safety", "app.cli.serve"]
    names += ["app.label_server.guard", "app.label_server.server_token", "app.label_server.process"]
    control = "app.loading.dicom.header"  # imports pydicom: shows the block works
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, json.dumps(BLOCKED), json.dumps([*names, control])],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["leaked"] == []
    assert len(report["failures"]) == 1 and report["failures"][0].startswith(control), report["failures"]
    assert "blocked import of pydicom" in report["failures"][0]


def test_labels_follow_channel_def_without_background():
    meta = json.loads((BUNDLES / HIPPO / "configs" / "metadata.json").read_text())
    assert labels_from_metadata(meta) == {"anterior": 1, "posterior": 2}
    odd = {
        "network_data_format": {"outputs": {"pred": {"channel_def": {"0": "Background", "3": "Membrane"}}}}
    }
    assert labels_from_metadata(odd) == {"membrane": 3}


def test_label_values_follow_the_bundles_saveimaged_scale():
    em = {"network_data_format": {"outputs": {"pred": {"channel_def": {"0": "membrane", "1": "cell"}}}}}
    labels = labels_from_metadata(em)
    assert labels == {"membrane": 0, "cell": 1}  # membrane is class 0 but not "background": it is listed
    assert label_values(labels, None) == labels
    assert label_values(labels, 255) == {"membrane": 0, "cell": 255}  # the EM bundle's PNG convention
    assert label_values({"anterior": 1, "posterior": 2}, None) == {"anterior": 1, "posterior": 2}
    with pytest.raises(BundleError, match="scale=255 maps the class indices"):
        label_values({"anterior": 1, "posterior": 2}, 255)


def test_dimension_of_bundles_and_datastore_images():
    meta = json.loads((BUNDLES / HIPPO / "configs" / "metadata.json").read_text())
    assert bundle_dimension(meta) == 3
    em_like = {"network_data_format": {"inputs": {"image": {"spatial_shape": [256, 256]}}}}
    assert bundle_dimension(em_like) == 2
    assert bundle_dimension({}) == 3  # no spatial_shape: MONAI Label's default
    for name in ("/s/isbi_20.png", "/s/A.PNG", "/s/x.tif", "/s/y.tiff", "/s/z.jpg"):
        assert image_dimension(name) == 2, name
    for name in ("/s/hippocampus_001.nii.gz", "/s/v.nii", "/s/v.nrrd", "/s/dicom_series", "/s/png.nii.gz"):
        assert image_dimension(name) == 3, name


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({}, "has no network_data_format.outputs.pred.channel_def"),
        ({"pred": {}}, "has no network_data_format.outputs.pred.channel_def"),
        ({"pred": {"channel_def": {"one": "x"}}}, "not an integer"),
    ],
)
def test_labels_refuse_unusable_metadata(outputs, message):
    with pytest.raises(BundleError, match=message):
        labels_from_metadata({"network_data_format": {"outputs": outputs}})


def test_discover_finds_the_hippocampus_bundle_and_skips_other_folders():
    specs = {s.name: s for s in discover_bundles(BUNDLES)}
    assert HIPPO in specs and "schema" not in specs
    hippo = specs[HIPPO]
    assert hippo.labels == {"anterior": 1, "posterior": 2}
    assert hippo.trainable and hippo.path == (BUNDLES / HIPPO).resolve()
    assert [s.name for s in discover_bundles(BUNDLES, [HIPPO])] == [HIPPO]
    with pytest.raises(BundleError, match="no bundle named nope"):
        discover_bundles(BUNDLES, ["nope"])
    with pytest.raises(BundleError, match="bundles folder not found"):
        discover_bundles(BUNDLES / "missing")


def _toy_bundle(root: Path, weights: bytes | None) -> Path:
    bundle = root / "bundles" / "toy"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    meta = {"network_data_format": {"outputs": {"pred": {"channel_def": {"0": "background", "1": "fg"}}}}}
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    (bundle / "configs" / "inference.json").write_text("{}")
    (bundle / "eval").mkdir()
    (bundle / "models" / "checkpoint_epoch=3.pt").write_bytes(b"not served")
    if weights is not None:
        (bundle / "models" / "model.pt").write_bytes(weights)
    return bundle


def test_served_copy_follows_repository_until_trained_and_never_writes_back(tmp_path):
    bundle = _toy_bundle(tmp_path, b"v1")
    (spec,) = discover_bundles(bundle.parent)
    served = prepare_served_copy(spec, tmp_path / "served")
    assert served == (tmp_path / "served" / "toy").resolve()
    assert (served / "configs" / "inference.json").is_file()
    assert not (served / "eval").exists() and not (served / "models" / "checkpoint_epoch=3.pt").exists()
    assert (served / "models" / "model.pt").read_bytes() == b"v1"
    assert served_weights_stats(served)["trained_here"] is False

    # repository weights change, the copy is untouched: refreshed
    (bundle / "models" / "model.pt").write_bytes(b"v2")
    prepare_served_copy(spec, tmp_path / "served")
    assert (served / "models" / "model.pt").read_bytes() == b"v2"

    # the server trained: its weights are kept, the repository keeps its own
    (served / "models" / "model.pt").write_bytes(b"trained")
    (bundle / "models" / "model.pt").write_bytes(b"v3")
    (bundle / "configs" / "inference.json").write_text('{"changed": true}')
    prepare_served_copy(spec, tmp_path / "served")
    assert (served / "models" / "model.pt").read_bytes() == b"trained"
    assert (bundle / "models" / "model.pt").read_bytes() == b"v3"
    assert json.loads((served / "configs" / "inference.json").read_text()) == {"changed": True}
    stats = served_weights_stats(served)
    assert stats["trained_here"] is True and stats["sha256"] == sha256(served / "models" / "model.pt")


def test_served_copy_without_weights_is_made_but_has_no_stats(tmp_path):
    bundle = _toy_bundle(tmp_path, None)
    (spec,) = discover_bundles(bundle.parent)
    assert not spec.has_weights
    served = prepare_served_copy(spec, tmp_path / "served")
    assert (served / "configs" / "metadata.json").is_file()
    assert served_weights_stats(served) == {}


@pytest.mark.parametrize("value", ["hippocampus_001", "case 7", "a.b-c_d", "x" * 255])
def test_plain_names_pass(value):
    assert check_name(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "../x",
        "..",
        "a/../b",
        "a/b",
        "/etc/passwd",
        "a\\b",
        ".hidden",
        "x\x00y",
        "x" * 256,
        None,
        3,
        ["a"],
    ],
)
def test_path_like_names_are_refused(value):
    with pytest.raises(UnsafeNameError):
        check_name(value)


def test_infer_request_accepts_ids_uploads_and_session_files(tmp_path):
    check_infer_request({"image": "hippocampus_001", "label_tag": "original", "model_filename": ["model.pt"]})
    with tempfile.NamedTemporaryFile(
        suffix=".nii.gz"
    ) as upload:  # what MONAI Label's /infer does with a file
        check_infer_request({"image": upload.name})
    session_file = tmp_path / "sessions" / "abc" / "image.nii.gz"
    session_file.parent.mkdir(parents=True)
    session_file.write_bytes(b"")
    check_infer_request({"image": str(session_file)}, allowed_dirs=[str(tmp_path / "sessions")])


@pytest.mark.parametrize(
    "request_",
    [
        {"image": "../studies/hippocampus_001"},
        {"image": str(Path(tempfile.gettempdir()) / ".." / "etc" / "passwd")},
        {"image": "/etc/passwd"},
        {"image": os.path.join(tempfile.gettempdir(), "not_an_upload.nii.gz")},
        {"image": "hippocampus_001", "label_tag": "../../labels"},
        {"image": "hippocampus_001", "model_filename": "../../../other/model.pt"},
        {"image": 7},
    ],
)
def test_infer_request_refuses_paths(request_, tmp_path):
    with pytest.raises(UnsafeNameError):
        check_infer_request(request_, allowed_dirs=[str(tmp_path)])


def test_train_request_checks_model_filename_and_run_id():
    check_train_request({"max_epochs": 2, "model_filename": "model.pt", "run_id": ""})
    with pytest.raises(UnsafeNameError):
        check_train_request({"model_filename": "/tmp/x.pt"})
    with pytest.raises(UnsafeNameError):
        check_train_request({"run_id": "validate#evaluator/../x"})


def test_serve_builds_a_loopback_guarded_command_that_names_the_token_file_only(tmp_path, monkeypatch):
    from app.cli.main import build_parser
    from app.cli.serve import APP_DIR, GUARDED_APP, server_command

    monkeypatch.setenv("UNETSEG_SERVE_TOKEN", "operator-secret-123456")
    args = build_parser().parse_args(
        ["serve", "--studies", str(tmp_path), "--model-dir", str(tmp_path / "m")]
        + ["--allow-origin", "http://viewer.local:3000", "--allow-host", "lab.example"]
    )
    cmd = server_command(args, "/py")
    assert cmd[:4] == ["/py", "-m", "monailabel.main", "start_server"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--app") + 1] == str(APP_DIR) and (APP_DIR / "main.py").is_file()
    assert cmd[cmd.index("--uvicorn_app") + 1] == GUARDED_APP == "app.label_server.asgi:app"
    conf = {cmd[i + 1]: cmd[i + 2] for i, part in enumerate(cmd) if part == "--conf"}
    assert conf["model_dir"] == str((tmp_path / "m").resolve())
    assert conf["token_file"] == str((tmp_path / "m").resolve() / "server_token")
    assert conf["allow_origins"] == "http://viewer.local:3000"
    assert conf["allow_hosts"] == "lab.example,127.0.0.1"
    assert not any("operator-secret" in part for part in cmd)  # a command line is visible to every user


def test_serve_without_monailabel_names_the_install_command(tmp_path, monkeypatch):
    from app.cli import serve
    from app.errors import UnetsegError

    monkeypatch.setattr(serve, "LABEL_VENV_PYTHON", tmp_path / "absent" / "python")
    if serve.importlib.util.find_spec("monailabel") is not None:
        pytest.skip("monailabel is installed in this environment")
    with pytest.raises(UnetsegError, match="PIP_CONSTRAINT=constraints/label.txt"):
        serve.find_label_python(None)
