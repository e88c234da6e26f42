"""Tolerances and limits of the DICOM reader, in one small frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DicomReadOptions:
    """How strict the DICOM reader is.

    Attributes:
        spacing_rtol: a slice may sit at most ``max(spacing_atol_mm, spacing_rtol * spacing)`` mm away from
            where a regular grid puts it (along the normal: non-uniform spacing or missing slices; across it:
            gantry tilt or a sheared stack). ``spacing`` is the mean slice spacing of the stack.
        spacing_atol_mm: absolute floor of that tolerance, in mm (float rounding in ImagePositionPatient).
        orientation_atol: largest difference between two direction cosines (ImageOrientationPatient) that still
            counts as the same orientation; also the tolerance of the unit-length and orthogonality checks.
        max_bytes: refuse a series whose declared size (Rows x Columns x frames x bytes per output voxel) is
            larger, before any pixel is decoded.
        single_slice_spacing_mm: spacing along ``k`` for a one-slice series that has neither
            SpacingBetweenSlices nor SliceThickness; ``None`` refuses such a series.
    """

    spacing_rtol: float = 0.01
    spacing_atol_mm: float = 0.01
    orientation_atol: float = 1e-3
    max_bytes: int = 4 * 1024**3
    single_slice_spacing_mm: float | None = None

    def __post_init__(self) -> None:
        if self.spacing_rtol < 0 or self.spacing_atol_mm < 0 or self.orientation_atol < 0:
            raise ValueError("tolerances must be >= 0")
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {self.max_bytes}")
        if self.single_slice_spacing_mm is not None and not self.single_slice_spacing_mm > 0:
            raise ValueError(f"single_slice_spacing_mm must be > 0, got {self.single_slice_spacing_mm}")

    def position_tolerance(self, spacing: float) -> float:
        """Tolerance in mm for a slice position, given the stack's slice spacing in mm."""
        return max(self.spacing_atol_mm, self.spacing_rtol * abs(spacing))
