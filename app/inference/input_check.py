"""Does this input fit this bundle? Checked per case, after loading and before any engine starts.

Contract of :func:`check_input`: raises :class:`~app.errors.InputError` naming the input and the bundle when

* **spatial dimensions** differ: a 3D bundle given a 2D image, or a 2D bundle given a 3D volume (NIfTI, NRRD,
  DICOM). A 2D bundle accepts a 3D *picture stack* (a multi-page TIFF: pages are independent 2D slices, see
  :func:`app.inference.predict.segment`), not a 3D volume, whose slices are a resampling of one object and
  would be segmented by a 2D network trained on something else;
* **channels** differ: the bundle declares ``num_channels`` input channels and every unetseg volume is one
  scalar channel (the readers refuse RGB and vector images);
* **modality** differs, when both are known: the bundle declares one (``inputs.image.modality``), the input
  says its own (DICOM ``Modality``), and the run asked for the bundle's modality (``required`` is not
  ``None``: ``--modality any`` is the user's explicit choice to run across modalities).

Nothing is read or allocated here: the check uses the volume's shape and metadata only.
"""

from __future__ import annotations

from app.errors import InputError
from app.inference.bundle_info import BundleInfo
from app.volume import Volume


def check_input(info: BundleInfo, volume: Volume, kind: str, *, required_modality: str | None) -> None:
    """Refuse ``volume`` (a case of ``kind``) if ``info``'s bundle cannot segment it (module docstring)."""
    where = volume.source or None
    bundle = f"bundle {info.name!r} ({info.path.name})"
    dims = volume.ndim
    if info.spatial_dims == 3 and dims == 2:
        raise InputError(
            where,
            f"a 2D image of shape {volume.shape}, but {bundle} segments 3D volumes (spatial_dims 3); "
            "use a 2D bundle for pictures and single slices",
        )
    if info.spatial_dims == 2 and dims == 3 and kind != "picture":
        raise InputError(
            where,
            f"a 3D {kind} volume of shape {volume.shape}, but {bundle} segments 2D images (spatial_dims 2); "
            "give 2D pictures (PNG/TIFF, a multi-page TIFF for a stack) or use a 3D bundle",
        )
    if info.num_channels != 1:
        raise InputError(
            where,
            f"one image channel, but {bundle} takes {info.num_channels} input channels "
            "(inputs.image.num_channels); multi-channel input is not supported by unetseg infer",
        )
    modality = volume.modality
    if required_modality and info.modality and modality and modality.upper() != info.modality.upper():
        raise InputError(
            where,
            f"modality {modality}, but {bundle} was made for {info.modality} images "
            "(--modality any runs it regardless)",
        )


def target_spacing(preprocessing: object) -> tuple[float, ...] | None:
    """The ``pixdim`` of the first ``Spacingd`` in a bundle's preprocessing (``Compose`` trees searched depth
    first), or ``None`` when it resamples nothing."""
    from monai.transforms import Compose, Spacingd

    stack = [preprocessing]
    while stack:
        transform = stack.pop(0)
        if isinstance(transform, Spacingd):
            return tuple(float(v) for v in transform.spacing_transform.pixdim)
        if isinstance(transform, Compose):
            stack[:0] = list(transform.transforms)
    return None


def check_resampled_size(
    volume: Volume, spacing: tuple[float, ...] | None, bundle_name: str, max_bytes: int
) -> None:
    """Refuse ``volume`` when the bundle's resampling to ``spacing`` (mm; a value <= 0 keeps the axis) would build
    a float32 image over ``max_bytes``, the input size limit: a file's own size is checked on reading, but a small
    file with large voxels (wrong units, a corrupt pixdim) becomes a grid far beyond memory only here, where MONAI
    would fail deep inside ``Spacingd`` with an allocation error."""
    import numpy as np

    from app.loading.options import format_bytes

    if spacing is None or volume.ndim != 3:
        return
    current = np.linalg.norm(np.asarray(volume.affine)[:3, :3], axis=0)
    target = np.array(
        [s if s > 0 else c for s, c in zip(spacing[:3], current, strict=False)], dtype=np.float64
    )
    if len(target) < 3:
        target = np.concatenate([target, current[len(target) :]])
    shape = np.ceil(np.asarray(volume.shape, dtype=np.float64) * current / target)
    size = float(np.prod(shape)) * 4
    if size > max_bytes:
        grid = " x ".join(f"{int(n)}" for n in shape)
        raise InputError(
            volume.source or None,
            f"bundle {bundle_name!r} resamples to {' x '.join(f'{s:g}' for s in target)} mm; this image's voxels "
            f"({' x '.join(f'{c:.4g}' for c in current)} mm, shape {volume.shape}) would become a grid of {grid} "
            f"({format_bytes(int(size))} as float32), over the limit of {format_bytes(max_bytes)} "
            "(--max-input-gib); check the voxel size in the file's header",
        )
