"""Which source image frame each slice of a label map lies on, checked geometrically.

A DICOM SEG must say, frame by frame, which source image it was derived from, and its pixels must lie
exactly on that image. This module lists the frames of the source images with their plane geometry
(:func:`source_frames`) and assigns one frame to every label slice ``k`` (:func:`match_slices`), either by the
SOP Instance UIDs the DICOM reader recorded in ``Volume.dicom`` or, without them, by position; in both
cases every slice is then verified against its frame (all corners within a tolerance in mm).

Geometry is read from the DICOM attributes by hand (a few lines) because the match needs per-frame
positions keyed by SOP Instance UID and frame number, which highdicom does not expose for source images.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.errors import InputError, OutputError
from app.volume import Volume

if TYPE_CHECKING:
    from pydicom import Dataset

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceFrame:
    """One 2D frame of a source image and its plane in LPS patient coordinates (mm).

    Attributes:
        dataset: the image (metadata is enough).
        frame_number: 1-based frame number in a multi-frame image, ``None`` for a single-frame image.
        position: ImagePositionPatient, centre of the first transmitted pixel, shape (3,).
        row_cosine: ImageOrientationPatient[:3], direction of increasing column index, shape (3,).
        column_cosine: ImageOrientationPatient[3:], direction of increasing row index, shape (3,).
        row_spacing: PixelSpacing[0], mm between rows (along ``column_cosine``).
        column_spacing: PixelSpacing[1], mm between columns (along ``row_cosine``).
        rows, columns: matrix size.
    """

    dataset: Dataset
    frame_number: int | None
    position: np.ndarray
    row_cosine: np.ndarray
    column_cosine: np.ndarray
    row_spacing: float
    column_spacing: float
    rows: int
    columns: int

    @property
    def sop_instance_uid(self) -> str:
        return str(self.dataset.SOPInstanceUID)

    @property
    def key(self) -> tuple[str, int | None]:
        return self.sop_instance_uid, self.frame_number

    def corners(self) -> np.ndarray:
        """World positions (3, 3) of pixels (row 0, col 0), (row 0, last col), (last row, col 0)."""
        along_row = (self.columns - 1) * self.column_spacing * self.row_cosine
        down_column = (self.rows - 1) * self.row_spacing * self.column_cosine
        return np.stack([self.position, self.position + along_row, self.position + down_column])

    def describe(self) -> str:
        frame = f" frame {self.frame_number}" if self.frame_number is not None else ""
        return f"SOP instance {self.sop_instance_uid}{frame}"


def dataset_path(dataset: Dataset) -> Path | None:
    """The file a dataset was read from, if any (for error messages)."""
    filename = getattr(dataset, "filename", None)
    return Path(filename) if isinstance(filename, str | Path) and filename else None


def source_frames(datasets: Sequence[Dataset]) -> list[SourceFrame]:
    """All frames of ``datasets`` (single-frame images or enhanced multi-frame images) with their geometry.

    Raises:
        InputError: an image lacks plane position, orientation or pixel spacing (e.g. a projection X-ray).
    """
    frames: list[SourceFrame] = []
    for ds in datasets:
        if "PerFrameFunctionalGroupsSequence" in ds:
            shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
            for index, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
                frames.append(
                    _frame(
                        ds,
                        index + 1,
                        _functional(ds, item, shared, "PlanePositionSequence", "ImagePositionPatient"),
                        _functional(ds, item, shared, "PlaneOrientationSequence", "ImageOrientationPatient"),
                        _functional(ds, item, shared, "PixelMeasuresSequence", "PixelSpacing"),
                    )
                )
        else:
            for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
                if keyword not in ds:
                    raise InputError(
                        dataset_path(ds),
                        f"source image {ds.get('SOPInstanceUID', '?')} has no {keyword}; a SEG on a patient "
                        "coordinate grid needs cross-sectional images (CT, MR, PET ...)",
                    )
            frames.append(
                _frame(ds, None, ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing)
            )
    return frames


def match_slices(
    labels: Volume,
    frames: Sequence[SourceFrame],
    *,
    keys: Sequence[tuple[str, int | None]] | None,
    tolerance_mm: float,
    path: Path,
) -> list[SourceFrame]:
    """The source frame under each label slice ``k`` (list of length ``labels.shape[2]``).

    Args:
        labels: 3D volume in LPS, array ``(i, j, k)`` = (column, row, slice).
        frames: candidate frames from :func:`source_frames`.
        keys: ``(SOPInstanceUID, frame number or None)`` for each ``k`` as recorded by the DICOM reader, or
            ``None`` to match each slice to the frame nearest to its first voxel.
        tolerance_mm: largest distance allowed between a label slice corner and the same source pixel.
        path: the output file, for messages.

    Raises:
        OutputError: a slice has no source frame, two slices share one, or a slice is off its frame's grid.
    """
    if labels.space != "LPS" or labels.ndim != 3:
        raise ValueError("match_slices expects a 3D volume in LPS")
    n_slices = labels.shape[2]
    if keys is not None:
        by_key = {frame.key: frame for frame in frames}
        if len(keys) != n_slices:
            raise OutputError(
                path,
                f"the label volume has {n_slices} slices but its DICOM metadata lists {len(keys)} images",
            )
        matched = []
        for k, key in enumerate(keys):
            if key not in by_key:
                raise OutputError(
                    path,
                    f"label slice k={k} was read from SOP instance {key[0]}"
                    f"{'' if key[1] is None else f' frame {key[1]}'}, which is not among the source images "
                    "given; pass the series the label map was computed on",
                )
            matched.append(by_key[key])
    else:
        positions = np.stack([frame.position for frame in frames])
        origins = labels.world_coordinates(np.array([[0.0, 0.0, k] for k in range(n_slices)]))
        nearest = np.argmin(np.linalg.norm(origins[:, None, :] - positions[None, :, :], axis=2), axis=1)
        matched = [frames[index] for index in nearest]

    seen: dict[tuple[str, int | None], int] = {}
    for k, frame in enumerate(matched):
        if frame.key in seen:
            raise OutputError(
                path, f"label slices k={seen[frame.key]} and k={k} both lie on source {frame.describe()}"
            )
        seen[frame.key] = k
        _check_slice(labels, k, frame, tolerance_mm, path)
    return matched


def _check_slice(labels: Volume, k: int, frame: SourceFrame, tolerance_mm: float, path: Path) -> None:
    n_i, n_j = labels.shape[:2]
    if (n_i, n_j) != (frame.columns, frame.rows):
        raise OutputError(
            path,
            f"label slice k={k} is {n_i} x {n_j} (columns x rows) but source {frame.describe()} is "
            f"{frame.columns} x {frame.rows}; the label map must be on the source image grid",
        )
    ours = labels.world_coordinates(np.array([[0, 0, k], [n_i - 1, 0, k], [0, n_j - 1, k]], dtype=float))
    error = float(np.max(np.linalg.norm(ours - frame.corners(), axis=1)))
    if error > tolerance_mm:
        raise OutputError(
            path,
            f"label slice k={k} is {error:.3g} mm away from source {frame.describe()} (tolerance "
            f"{tolerance_mm} mm): the label volume's affine does not match the source geometry; resample the "
            "label map onto the source series grid before writing a SEG",
        )


def _functional(
    ds: Dataset, item: Dataset, shared: Dataset | None, sequence: str, keyword: str
) -> Sequence[float]:
    for group in (item, shared):
        if group is not None and sequence in group and keyword in group[sequence].value[0]:
            return group[sequence].value[0][keyword].value
    raise InputError(
        dataset_path(ds),
        f"multi-frame source image {ds.get('SOPInstanceUID', '?')} has no {sequence} > {keyword} in its "
        "functional groups; a SEG on a patient coordinate grid needs cross-sectional images",
    )


def _frame(
    ds: Dataset,
    frame_number: int | None,
    position: Sequence[float],
    orientation: Sequence[float],
    spacing: Sequence[float],
) -> SourceFrame:
    orientation_array = np.asarray(orientation, dtype=np.float64)
    return SourceFrame(
        dataset=ds,
        frame_number=frame_number,
        position=np.asarray(position, dtype=np.float64),
        row_cosine=orientation_array[:3],
        column_cosine=orientation_array[3:],
        row_spacing=float(spacing[0]),
        column_spacing=float(spacing[1]),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
    )
