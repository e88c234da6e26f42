"""A MONAI bundle folder's metadata, read and validated without torch or MONAI: :class:`BundleInfo`.

Contract of :func:`read_bundle_info`: the folder must hold :data:`REQUIRED_FILES`; ``configs/metadata.json``
gives ``network_data_format.outputs.pred.channel_def`` (label value -> name, ``"0"`` is the background) and,
optionally, ``network_data_format.inputs.image.modality`` (the default series selection rule),
``num_channels``, ``spatial_shape`` (its length is the number of spatial dimensions), ``version`` and ``name``.
Every failure is a :class:`~app.errors.BundleError` naming the file and what to fix.

``label_context`` (the anatomy the SEG writer puts in front of short channel names such as ``"anterior"``) is
derived, not configured: the first word of the metadata ``name`` that is a known anatomy name of
:func:`app.segment_codes.known_names` (``"Hippocampus MRI segmentation"`` -> ``"hippocampus"``),
else the first such word of the folder name, else ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from app.bundle_metadata import channel_def, picture_scale, read_metadata, without_background
from app.checksums import sha256_file
from app.errors import BundleError

#: files every bundle must have, relative to its folder
REQUIRED_FILES = ("configs/metadata.json", "configs/inference.json", "models/model.pt")


@dataclass(frozen=True)
class BundleInfo:
    """What the app needs to know about a bundle, from its metadata (no torch needed).

    Attributes:
        path: the bundle folder (absolute).
        name: metadata ``name`` (the folder name when absent).
        version: metadata ``version`` (``"unknown"`` when absent).
        labels: ``channel_def`` as label value -> name, background included, sorted by value.
        modality: the input modality the bundle was made for (e.g. ``"MR"``), or ``None``.
        spatial_dims: 2 or 3 (from the input ``spatial_shape``; 3 when absent).
        label_context: anatomy for short channel names (module docstring), or ``None``.
        weights_sha256: SHA-256 of ``models/model.pt`` (provenance, and the --resume fingerprint).
        picture_scale: label value -> picture value factor of the bundle's own picture writer
            (:func:`app.bundle_metadata.picture_scale`; 255 for the EM bundle), ``None`` for none.
        num_channels: input channels the network takes (``inputs.image.num_channels``; 1 when absent).
    """

    path: Path
    name: str
    version: str
    labels: dict[int, str]
    modality: str | None
    spatial_dims: int
    label_context: str | None
    weights_sha256: str
    picture_scale: int | None = None
    num_channels: int = 1

    @property
    def segments(self) -> dict[int, str]:
        """``labels`` without the background (value 0)."""
        return {value: name for value, name in self.labels.items() if value != 0}

    @property
    def metadata_file(self) -> Path:
        return self.path / "configs" / "metadata.json"

    @property
    def config_file(self) -> Path:
        return self.path / "configs" / "inference.json"

    @property
    def weights_file(self) -> Path:
        return self.path / "models" / "model.pt"


def read_bundle_info(path: str | Path) -> BundleInfo:
    """Validate the folder and read its metadata (no torch, no MONAI).

    Raises:
        BundleError: a required file is missing, metadata.json is not JSON, or ``channel_def`` is missing or
            malformed.
    """
    root = Path(path).resolve()
    if not root.is_dir():
        raise BundleError(root, "bundle folder not found; give the folder that holds configs/ and models/")
    for relative in REQUIRED_FILES:
        if not (root / relative).is_file():
            raise BundleError(root / relative, "missing; a MONAI bundle needs " + ", ".join(REQUIRED_FILES))
    meta_file = root / "configs" / "metadata.json"
    metadata = read_metadata(root)
    labels = channel_def(metadata, meta_file)
    if not without_background(labels):
        raise BundleError(meta_file, "channel_def names only the background; nothing to segment")
    fmt = metadata.get("network_data_format") or {}
    image = (fmt.get("inputs") or {}).get("image") or {}
    modality = image.get("modality")
    shape = image.get("spatial_shape")
    spatial_dims = len(shape) if isinstance(shape, list) and len(shape) in (2, 3) else 3
    channels = image.get("num_channels", 1)
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise BundleError(meta_file, f"inputs.image.num_channels must be an integer >= 1, got {channels!r}")
    name = str(metadata.get("name") or root.name)
    return BundleInfo(
        path=root,
        name=name,
        version=str(metadata.get("version") or "unknown"),
        labels=labels,
        modality=str(modality).upper() if modality else None,
        spatial_dims=spatial_dims,
        label_context=derive_label_context(name, root.name),
        weights_sha256=sha256_file(root / "models" / "model.pt"),
        picture_scale=picture_scale(root),
        num_channels=channels,
    )


def derive_label_context(*names: str) -> str | None:
    """The first word of ``names`` (in order) that is a known single-word anatomy name, or ``None``."""
    from app.segment_codes import known_names

    anatomy = {key for key in known_names() if " " not in key}
    for text in names:
        for word in re.split(r"[^a-z]+", text.lower()):
            if word in anatomy:
                return word
    return None
