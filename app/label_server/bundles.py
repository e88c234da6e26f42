"""Find the project's bundles and prepare the copies a MONAI Label server serves and trains.

Contract:

* a *bundle* is a folder ``bundles/<name>/`` with ``configs/metadata.json`` and ``configs/inference.json``
  (``configs/train.json`` too if it can be trained). Its label names come from
  ``metadata.json`` ``network_data_format.outputs.pred.channel_def`` (``{"0": "background", ...}``);
  MONAI Label lists every name except ``background`` with its integer value.
* the server never reads or writes ``bundles/<name>/models`` in the repository after start-up: each bundle is
  copied to ``<model_dir>/<name>/`` (configs, docs, and ``models/model.pt``), and MONAI Label's tasks get that
  copy as ``bundle_root``. Training from the server writes its checkpoints there, never into the repository.
* a copy's weights are refreshed from the repository only while they are still the ones copied from it
  (the SHA-256 recorded in ``models/served_from.json``); weights written by server-side training are kept
  across restarts, with a warning when the repository has newer ones.

Only the standard library is used here, so the main environment can test it without monailabel.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from app.bundle_metadata import channel_def, read_metadata, without_background
from app.checksums import sha256_file
from app.errors import BundleError
from app.formats import PICTURE_SUFFIXES

logger = logging.getLogger(__name__)

#: the bundle files the server needs; everything else (eval/, runs/, checkpoints) stays behind
COPIED_DIRS = ("configs", "docs")
COPIED_FILES = ("LICENSE",)
WEIGHTS = "model.pt"
RECORD = "served_from.json"
#: file endings of single 2D slices: unetseg's pictures (:mod:`app.formats`) plus the JPEG and BMP files MONAI's
#: PILReader also reads when MONAI Label serves them; any other image (NIfTI, NRRD, a DICOM series) is taken as 3D
SLICE_SUFFIXES = (*PICTURE_SUFFIXES, ".jpg", ".jpeg", ".bmp")


@dataclass(frozen=True)
class BundleSpec:
    """One bundle folder found under the bundles directory.

    Attributes:
        name: the folder name, which is also the MONAI Label model name.
        path: absolute path of the bundle folder in the repository.
        labels: label name -> integer value, from ``channel_def``, background excluded (MONAI Label's rule).
        has_weights: whether ``models/model.pt`` exists in the repository bundle.
        trainable: whether ``configs/train.json`` exists.
    """

    name: str
    path: Path
    labels: dict[str, int]
    has_weights: bool
    trainable: bool


def labels_from_metadata(metadata: dict, *, source: Path | str = "metadata.json") -> dict[str, int]:
    """Label names and values from a bundle's ``metadata.json`` content, in MONAI Label's form.

    The entries come from :func:`app.bundle_metadata.channel_def` (the project's one reader, which checks them);
    MONAI Label lists every one not named ``background``, lower-cased, as ``{name: value}``.

    Raises:
        BundleError: no usable ``network_data_format.outputs.pred.channel_def``.
    """
    return {name.lower(): value for value, name in without_background(channel_def(metadata, source)).items()}


def label_values(
    labels: dict[str, int], scale: int | None, *, source: Path | str = "inference.json"
) -> dict[str, int]:
    """The values ``labels`` (name -> class index) take in the label image the bundle writes.

    A bundle's ``SaveImaged`` with ``scale`` (MONAI's ``PILWriter`` convention, 255 or 65535) clips the class
    index to [0, 1] and multiplies it by ``scale``: the EM bundle writes membrane (class 0) as 0 and cell (class
    1) as 255, the label convention of its training data. Without ``scale`` the value is the class index.

    Raises:
        BundleError: ``scale`` is set and a class index is not 0 or 1 (it would be clipped onto another label).
    """
    if not scale:
        return dict(labels)
    if any(index not in (0, 1) for index in labels.values()):
        raise BundleError(
            source,
            f"SaveImaged scale={scale} maps the class indices {sorted(labels.values())} onto 0 and {scale}, so "
            "labels would be lost; write class indices (no scale) for more than two classes",
        )
    return {name: index * int(scale) for name, index in labels.items()}


def bundle_dimension(metadata: dict) -> int:
    """Spatial dimensions of a bundle's input: the length of its first input's ``spatial_shape`` (3 without one)."""
    inputs = metadata.get("network_data_format", {}).get("inputs", {})
    first: object = next(iter(inputs.values()), {}) if isinstance(inputs, dict) else {}
    shape = first.get("spatial_shape") if isinstance(first, dict) else None
    return len(shape) if shape else 3


def image_dimension(path: str | Path) -> int:
    """2 for a file whose name ends like a 2D slice (``SLICE_SUFFIXES``, any case), else 3."""
    return 2 if str(path).lower().endswith(SLICE_SUFFIXES) else 3


def discover_bundles(bundles_dir: Path, names: list[str] | None = None) -> list[BundleSpec]:
    """The bundles under ``bundles_dir`` that MONAI Label can serve, sorted by name.

    A sub-folder counts when it has ``configs/metadata.json`` and ``configs/inference.json``; others (such as
    ``schema/``) are skipped silently. A bundle whose metadata cannot be read is skipped with a warning so one
    broken bundle does not stop the server.

    Args:
        bundles_dir: the folder holding the bundles (the repository's ``bundles/``).
        names: only these bundle names; ``None`` for all. An unknown name is an error.

    Raises:
        BundleError: ``bundles_dir`` is not a folder, or a requested name is not a bundle there.
    """
    bundles_dir = Path(bundles_dir).resolve()
    if not bundles_dir.is_dir():
        raise BundleError(bundles_dir, "bundles folder not found; pass --bundles-dir (conf bundles_dir)")
    found: dict[str, BundleSpec] = {}
    for folder in sorted(p for p in bundles_dir.iterdir() if p.is_dir()):
        configs = folder / "configs"
        if not (configs / "metadata.json").is_file() or not (configs / "inference.json").is_file():
            continue
        meta_path = configs / "metadata.json"
        try:
            labels = labels_from_metadata(read_metadata(folder), source=meta_path)
        except BundleError as exc:
            logger.warning("skipping bundle %s: %s", folder, exc)
            continue
        found[folder.name] = BundleSpec(
            name=folder.name,
            path=folder,
            labels=labels,
            has_weights=(folder / "models" / WEIGHTS).is_file(),
            trainable=(configs / "train.json").is_file(),
        )
    if names is None:
        return list(found.values())
    unknown = [n for n in names if n not in found]
    if unknown:
        raise BundleError(
            bundles_dir, f"no bundle named {', '.join(unknown)}; bundles found: {', '.join(found) or 'none'}"
        )
    return [found[n] for n in names]


@functools.lru_cache(maxsize=32)
def _cached_sha256(path: str, mtime_ns: int, size: int) -> str:
    """:func:`~app.checksums.sha256_file` remembered per (path, modification time, size), for ``/info`` which is asked often."""
    return sha256_file(Path(path))


def _atomic_copy(src: Path, dest: Path) -> str:
    """Copy ``src`` to ``dest`` through a temporary file in ``dest``'s folder, so a reader never sees half a file.

    Returns the SHA-256 of the bytes that were copied, hashed from the temporary file: ``src`` may be replaced
    in the meantime (a bundle being trained rewrites its ``model.pt``), so its hash taken before the copy may
    not be the copy's.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        shutil.copymode(src, tmp)  # mkstemp made it owner-only
        copied_sha = sha256_file(Path(tmp))
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return copied_sha


def _write_record(path: Path, record: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh, indent=4)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def prepare_served_copy(spec: BundleSpec, model_dir: Path) -> Path:
    """Create or refresh ``<model_dir>/<name>`` from the repository bundle and return its absolute path.

    Configs (and docs, LICENSE) are always copied again, so config edits in the repository reach the server on
    restart. Weights follow the rule in the module docstring; the decision is logged.

    Raises:
        BundleError: the copy cannot be written.
    """
    dest = (Path(model_dir) / spec.name).resolve()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for sub in COPIED_DIRS:
            if (spec.path / sub).is_dir():
                shutil.copytree(spec.path / sub, dest / sub, dirs_exist_ok=True)
        for name in COPIED_FILES:
            if (spec.path / name).is_file():
                shutil.copyfile(spec.path / name, dest / name)
        (dest / "models").mkdir(exist_ok=True)
    except OSError as exc:
        raise BundleError(dest, f"cannot write the served copy of bundle {spec.name}: {exc}") from exc

    source_weights = spec.path / "models" / WEIGHTS
    served_weights = dest / "models" / WEIGHTS
    record_path = dest / "models" / RECORD
    if not source_weights.is_file():
        if not served_weights.is_file():
            logger.warning(
                "bundle %s has no %s; it cannot be served until it has weights", spec.name, source_weights
            )
        return dest

    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    source_sha = sha256_file(source_weights)
    served_sha = sha256_file(served_weights) if served_weights.is_file() else None
    if served_sha is None or served_sha == record.get("copied_sha256"):
        if served_sha != source_sha:
            copied_sha = _atomic_copy(source_weights, served_weights)
            _write_record(record_path, {"source": str(source_weights), "copied_sha256": copied_sha})
            logger.info(
                "bundle %s: serving weights copied from %s (sha256 %s)",
                spec.name,
                source_weights,
                copied_sha[:12],
            )
        else:
            logger.info(
                "bundle %s: served weights are the repository's (sha256 %s)", spec.name, source_sha[:12]
            )
    else:
        note = (
            " (the repository has different weights; delete the copy to serve them)"
            if served_sha != source_sha
            else ""
        )
        logger.warning(
            "bundle %s: keeping weights trained by this server in %s (sha256 %s)%s",
            spec.name,
            served_weights,
            served_sha[:12],
            note,
        )
    return dest


def served_weights_stats(copy_dir: str | Path) -> dict[str, object]:
    """SHA-256, size, modification time (ISO 8601, UTC) and origin record of ``<copy_dir>/models/model.pt``.

    An empty dict when the copy has no weights. The origin record is the ``served_from.json`` content: the
    repository file the weights were copied from and its SHA-256; when the served SHA-256 differs from
    ``copied_sha256``, the weights were written by training on this server.
    """
    weights = Path(copy_dir) / "models" / WEIGHTS
    if not weights.is_file():
        return {}
    stat = weights.stat()
    record_path = weights.parent / RECORD
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    served_sha = _cached_sha256(str(weights), stat.st_mtime_ns, stat.st_size)
    return {
        "weights": str(weights),
        "sha256": served_sha,
        "bytes": stat.st_size,
        "modified": datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc).isoformat(timespec="seconds"),
        "copied_from": record.get("source"),
        "trained_here": bool(record) and served_sha != record.get("copied_sha256"),
    }
