"""Which label values to evaluate and their names: from ``--labels`` text or a bundle's metadata.

Contract: both functions return an ordered ``dict[int, str]`` (label value -> name), sorted by value.
"""

from __future__ import annotations

from pathlib import Path

from app.bundle_metadata import channel_def, picture_scale, read_metadata, scored_labels
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
    """``BUNDLE/configs/metadata.json`` as a dict (see :func:`app.bundle_metadata.read_metadata`)."""
    return read_metadata(bundle)


def labels_from_bundle(bundle: str | Path) -> dict[int, str]:
    """Label names from ``BUNDLE/configs/metadata.json`` ``network_data_format.outputs.pred.channel_def``.

    Every ``channel_def`` entry is evaluated except those named ``background`` (case-insensitive); so a
    2D EM bundle whose channel 0 is ``membrane`` evaluates label 0. Values are as the bundle stores them in
    pictures (:func:`app.bundle_metadata.scored_labels`): the EM bundle's cell, label 1, is scored as 255.

    Raises:
        BundleError: the file is missing or unreadable, or ``channel_def`` is absent or malformed.
    """
    path = Path(bundle) / "configs" / "metadata.json"
    labels = scored_labels(channel_def(read_metadata(bundle), path), picture_scale(bundle))
    if not labels:
        raise BundleError(path, "channel_def names only background; nothing to evaluate")
    return labels
