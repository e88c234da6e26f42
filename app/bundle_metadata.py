"""A bundle's ``configs/metadata.json``: reading it and its label definition, in one place.

Used by inference (segment names for DICOM SEG), evaluation (which labels to score) and the MONAI Label app,
so it imports nothing beyond the standard library.

Contract: ``channel_def`` is ``network_data_format.outputs.pred.channel_def``, an object of label value (a
string holding an integer >= 0) -> name; :func:`channel_def` returns it as ``dict[int, str]`` sorted by value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.errors import BundleError


def read_metadata(bundle: str | Path) -> dict[str, Any]:
    """``BUNDLE/configs/metadata.json`` as a dict.

    Raises:
        BundleError: the file is missing, unreadable or not a JSON object.
    """
    path = Path(bundle) / "configs" / "metadata.json"
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(path, "not found; is this a MONAI bundle folder?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(path, f"cannot be read as JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        raise BundleError(path, "must hold a JSON object")
    return metadata


def channel_def(metadata: Mapping[str, Any], source: str | Path = "metadata.json") -> dict[int, str]:
    """Every ``channel_def`` entry, validated, as ``{value: name}`` sorted by value.

    Raises:
        BundleError: (naming ``source``) it is absent, empty, or has a non-integer/negative key or empty name.
    """
    try:
        entries = metadata["network_data_format"]["outputs"]["pred"]["channel_def"]
    except (KeyError, TypeError):
        raise BundleError(source, "has no network_data_format.outputs.pred.channel_def") from None
    if not isinstance(entries, dict) or not entries:
        raise BundleError(source, "channel_def must be a non-empty object of label value -> name")
    labels: dict[int, str] = {}
    for key, name in entries.items():
        try:
            value = int(key)
        except ValueError:
            raise BundleError(source, f"channel_def key {key!r} is not an integer label value") from None
        if value < 0 or not str(name).strip():
            raise BundleError(
                source, f"channel_def entry {key!r}: {name!r} is not a label value >= 0 and a name"
            )
        labels[value] = str(name)
    return dict(sorted(labels.items()))


def without_background(labels: Mapping[int, str]) -> dict[int, str]:
    """The entries not named ``background`` (case-insensitive): the structures a model segments."""
    return {value: name for value, name in labels.items() if name.strip().lower() != "background"}


def scored_labels(labels: Mapping[int, str], scale: int | None = None) -> dict[int, str]:
    """The labels an evaluation scores, as stored on disk: :func:`without_background`, each value times
    ``scale`` (:func:`picture_scale`; the EM bundle's cell, label 1, is 255 in its pictures)."""
    return {value * (scale or 1): name for value, name in without_background(labels).items()}


def picture_scale(bundle: str | Path) -> int | None:
    """The ``scale`` of the ``SaveImage(d)`` in ``BUNDLE/configs/inference.json``'s postprocessing, when it is a
    literal integer: how the bundle's own writer stores label values in pictures (the EM bundle writes cell,
    label 1, as 255 in PNG, the input labels' convention). ``None``: no such writer, no scale, or unreadable.

    Read from the JSON text (no MONAI), so ``unetseg evaluate`` can use it as well as ``unetseg infer``.
    """
    path = Path(bundle) / "configs" / "inference.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    postprocessing = config.get("postprocessing") if isinstance(config, dict) else None
    transforms = postprocessing.get("transforms", []) if isinstance(postprocessing, dict) else []
    for transform in transforms if isinstance(transforms, list) else []:
        target = str(transform.get("_target_", "")) if isinstance(transform, dict) else ""
        if target.rsplit(".", 1)[-1] in ("SaveImaged", "SaveImage"):
            scale = transform.get("scale")
            return scale if isinstance(scale, int) and not isinstance(scale, bool) and scale > 0 else None
    return None
