"""Which label values to evaluate and their names: from ``--labels`` text or a bundle's metadata.

Contract: both functions return an ordered ``dict[int, str]`` (label value -> name), sorted by value.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.errors import BundleError, InputError


def parse_labels(text: str) -> dict[int, str]:
    """Parse ``"anterior=1,posterior=2"`` into ``{1: "anterior", 2: "posterior"}``.

    Raises:
        InputError: malformed entries, non-integer or negative values, or a value or name given twice.
    """
    labels: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.rpartition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(None, f"--labels entry {item!r} is not NAME=VALUE (e.g. anterior=1,posterior=2)")
        try:
            number = int(value)
        except ValueError:
            raise InputError(
                None, f"--labels entry {item!r}: {value!r} is not an integer label value"
            ) from None
        if number < 0:
            raise InputError(None, f"--labels entry {item!r}: label values are >= 0")
        if number in labels or name in labels.values():
            raise InputError(None, f"--labels entry {item!r}: label value or name given twice")
        labels[number] = name
    if not labels:
        raise InputError(None, "--labels is empty; give NAME=VALUE pairs, e.g. anterior=1,posterior=2")
    return dict(sorted(labels.items()))


def bundle_metadata(bundle: str | Path) -> dict:
    """``BUNDLE/configs/metadata.json`` as a dict.

    Raises:
        BundleError: the file is missing, unreadable or not a JSON object.
    """
    path = Path(bundle) / "configs" / "metadata.json"
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(path, "not found; is this a MONAI bundle folder?") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(path, f"cannot be read as JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        raise BundleError(path, "must hold a JSON object")
    return metadata


def labels_from_bundle(bundle: str | Path) -> dict[int, str]:
    """Label names from ``BUNDLE/configs/metadata.json`` ``network_data_format.outputs.pred.channel_def``.

    Every ``channel_def`` entry is evaluated except those named ``background`` (case-insensitive); so a
    2D EM bundle whose channel 0 is ``membrane`` evaluates label 0.

    Raises:
        BundleError: the file is missing or unreadable, or ``channel_def`` is absent or malformed.
    """
    path = Path(bundle) / "configs" / "metadata.json"
    metadata = bundle_metadata(bundle)
    try:
        channel_def = metadata["network_data_format"]["outputs"]["pred"]["channel_def"]
    except (KeyError, TypeError):
        raise BundleError(path, "has no network_data_format.outputs.pred.channel_def") from None
    if not isinstance(channel_def, dict) or not channel_def:
        raise BundleError(path, "channel_def must be a non-empty object of label value -> name")
    labels: dict[int, str] = {}
    for key, name in channel_def.items():
        try:
            value = int(key)
        except ValueError:
            raise BundleError(path, f"channel_def key {key!r} is not an integer label value") from None
        if str(name).strip().lower() != "background":
            labels[value] = str(name)
    if not labels:
        raise BundleError(path, "channel_def names only background; nothing to evaluate")
    return dict(sorted(labels.items()))
