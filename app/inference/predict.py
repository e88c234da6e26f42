"""One image Volume -> its label Volume, through the bundle's own preprocessing, inferer and postprocessing.

Contract of :func:`segment`:

* input: a :class:`~app.volume.Volume` (any space; 2D or 3D as the bundle's ``spatial_dims`` says, or for a
  2D bundle a 3D stack of 2D slices, e.g. a multi-page TIFF, segmented slice by slice along its last axis)
  and a :class:`~app.inference.bundle.LoadedBundle`.
* route: the volume is written in RAS (``Volume.in_space("RAS")``, the array unchanged) as an uncompressed
  ``.nii`` into ``workdir`` (for a 2D bundle: as a lossless TIFF picture, which MONAI's default 2D reader,
  ``PILReader``, reads in the same index order; a picture has no geometry, so only the shape is checked),
  and ``[{"image": path}]`` is run through a fresh :class:`monai.engines.SupervisedEvaluator` built from the
  bundle's parts (one evaluator run per case; the network and its weights are shared). The bundle then reads,
  reorients, resamples and normalises the image exactly as ``python -m monai.bundle run`` does, so the labels
  are identical to the bundle's own output.
* the bundle's postprocessing must bring ``pred`` back onto the input grid (``Invertd``) and to one channel
  of label values (``AsDiscreted(argmax=True)``); :class:`~app.inference.capture.CapturePrediction` keeps it.
* output: a label Volume on the input's grid *and in its space* (LPS for DICOM; ``volume.with_array``, so the
  affine, ``source`` and ``meta`` such as the DICOM provenance are the input's), dtype uint8 (uint16 when a
  label exceeds 255), values among the bundle's ``channel_def`` keys.

Raises :class:`~app.errors.InputError` for an image of the wrong dimensionality, :class:`~app.errors.BundleError`
when the postprocessing yields no usable ``pred``, and :class:`~app.errors.OutputError` when the prediction is
not on the input grid (shape, or affine beyond :data:`AFFINE_TOLERANCE_MM`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.errors import BundleError, InputError, OutputError
from app.inference.bundle import LoadedBundle
from app.inference.capture import CapturedPrediction, CapturePrediction
from app.volume import Volume
from app.writing.nifti import write_nifti
from app.writing.picture import write_picture

if TYPE_CHECKING:
    from app.engines.inferers.window_progress import ProgressListener

logger = logging.getLogger(__name__)

#: largest difference (mm) allowed between the prediction's affine and the input's. The temporary NIfTI stores
#: the affine in float32, so positions a few hundred mm from the origin round by about 1e-5 mm.
AFFINE_TOLERANCE_MM = 1e-3


def segment(
    bundle: LoadedBundle,
    volume: Volume,
    workdir: str | Path,
    *,
    name: str = "case",
    progress: ProgressListener | None = None,
) -> Volume:
    """Segment ``volume`` with ``bundle`` (contract in the module docstring).

    Args:
        bundle: the loaded bundle.
        volume: the image.
        workdir: an existing folder for the temporary NIfTI (removed again before returning).
        name: file stem of the temporary NIfTI (a file-name-safe case id).
        progress: ``progress(done, total)`` as the sliding window runs its windows
            (:class:`~app.engines.inferers.window_progress.WindowProgress`; a stack of 2D pages reports page by page).
    """
    if bundle.info.spatial_dims == 2 and volume.ndim == 3:
        pages = [
            segment(
                bundle,
                replace(volume, array=volume.array[..., k]),
                workdir,
                name=f"{name}_{k:04d}",
                progress=progress,
            ).array
            for k in range(volume.shape[-1])
        ]
        return volume.with_array(np.stack(pages, axis=-1))
    if volume.ndim != bundle.info.spatial_dims:
        raise InputError(
            volume.source or None,
            f"a {volume.ndim}D image, but bundle {bundle.info.name!r} segments {bundle.info.spatial_dims}D images",
        )
    ras = volume.in_space("RAS")
    if volume.ndim == 2:
        image_file = write_picture(ras, Path(workdir) / f"{name}.tif")
    else:
        image_file = write_nifti(ras, Path(workdir) / f"{name}.nii")
    try:
        captured = _run_evaluator(bundle, image_file, progress)
    finally:
        image_file.unlink(missing_ok=True)
    if len(captured) != 1:
        raise BundleError(
            bundle.info.config_file,
            f"the postprocessing produced {len(captured)} 'pred' outputs for one image; expected one",
        )
    pred = captured[0]
    labels = _label_array(pred.array, bundle, volume)
    # a picture carries no geometry: for a 2D bundle only the shape can be checked, against the input's own grid
    _check_grid(pred.affine if volume.ndim == 3 else ras.affine, ras, labels.shape, volume)
    logger.debug("segmented %s: labels %s", volume.source, np.unique(labels).tolist())
    return volume.with_array(labels)


def _run_evaluator(
    bundle: LoadedBundle, image_file: Path, progress: ProgressListener | None = None
) -> list[CapturedPrediction]:
    from monai.data import DataLoader, Dataset
    from monai.engines import SupervisedEvaluator

    from app.engines.inferers.inferer_wrapper import find_inferer
    from app.engines.inferers.window_progress import WindowProgress

    capture = CapturePrediction("pred")
    loader = DataLoader(
        Dataset([{"image": str(image_file)}], transform=bundle.preprocessing), batch_size=1, num_workers=0
    )
    evaluator = SupervisedEvaluator(
        device=bundle.device,
        val_data_loader=loader,
        network=bundle.network,
        inferer=bundle.inferer,
        postprocessing=bundle.postprocessing,
        val_handlers=[*bundle.handlers, capture],
        **dict(bundle.evaluator_settings),
    )
    meter = find_inferer(bundle.inferer, WindowProgress) if progress is not None else None
    with (
        meter.reporting(progress) if meter is not None and progress is not None else contextlib.nullcontext()
    ):
        evaluator.run()
    return capture.captured


def _label_array(pred: np.ndarray, bundle: LoadedBundle, volume: Volume) -> np.ndarray:
    """``(1, *spatial)`` whole-number predictions -> ``(*spatial)`` uint8/uint16 label values of the bundle."""
    config = bundle.info.config_file
    if pred.ndim != volume.ndim + 1 or pred.shape[0] != 1:
        raise BundleError(
            config,
            f"postprocessed 'pred' has shape {pred.shape}; expected (1, *spatial): end the postprocessing "
            "with AsDiscreted(argmax=True) so that it holds one channel of label values",
        )
    array = pred[0]
    if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
        raise BundleError(config, "postprocessed 'pred' holds non-integer values; expected label values")
    values = set(np.unique(array).astype(np.int64).tolist())
    unknown = sorted(values - set(bundle.info.labels))
    if unknown:
        raise BundleError(
            bundle.info.metadata_file,
            f"the prediction holds label values {unknown} that channel_def does not name",
        )
    dtype = np.uint8 if max(bundle.info.labels) <= 255 else np.uint16
    return array.astype(dtype)


def _check_grid(affine: np.ndarray | None, ras: Volume, shape: tuple[int, ...], volume: Volume) -> None:
    where = volume.source or None
    if shape != ras.shape:
        raise OutputError(
            where,
            f"the bundle's prediction has shape {shape}, the image {ras.shape}: the postprocessing must "
            "invert the preprocessing (Invertd) so that labels lie on the input grid",
        )
    if affine is None:
        raise OutputError(where, "the bundle's prediction carries no affine; cannot check its grid")
    expected = ras.affine
    if affine.shape != (4, 4):
        affine = _as_4x4(affine, ras.ndim)
    error = float(np.max(np.abs(affine - expected)))
    if error > AFFINE_TOLERANCE_MM:
        raise OutputError(
            where,
            f"the bundle's prediction is off the input grid (affine differs by {error:.4g} mm > "
            f"{AFFINE_TOLERANCE_MM} mm): the postprocessing must invert the preprocessing (Invertd)",
        )


def _as_4x4(affine: np.ndarray, ndim: int) -> np.ndarray:
    """A 2D image's 3x3 affine in the 4x4 layout of :class:`Volume` (unit normal as third column)."""
    if affine.shape != (ndim + 1, ndim + 1) or ndim != 2:
        raise OutputError(None, f"unexpected prediction affine of shape {affine.shape}")
    full = np.eye(4)
    full[:2, :2], full[:2, 3] = affine[:2, :2], affine[:2, 2]
    return full
