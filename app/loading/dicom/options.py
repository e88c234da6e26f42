"""Tolerances and limits of the DICOM reader, in one small frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, fields

from app.loading.options import ReadOptions


@dataclass(frozen=True, kw_only=True)
class DicomReadOptions(ReadOptions):
    """How strict the DICOM reader is: :class:`~app.loading.options.ReadOptions` plus stack tolerances.

    Attributes:
        max_bytes: (from :class:`ReadOptions`) refuse a series whose declared size (Rows x Columns x frames x
            bytes per output voxel, or per stored voxel if wider) is larger, before any pixel is decoded.
        strict_orientation: (from :class:`ReadOptions`) not used: a DICOM series has one orientation.
        spacing_rtol: a slice may sit at most ``max(spacing_atol_mm, spacing_rtol * spacing)`` mm away from
            where a regular grid puts it (along the normal: non-uniform spacing or missing slices; across it:
            gantry tilt or a sheared stack). ``spacing`` is the mean slice spacing of the stack.
        spacing_atol_mm: absolute floor of that tolerance, in mm (float rounding in ImagePositionPatient).
        orientation_atol: largest difference between two direction cosines (ImageOrientationPatient) that still
            counts as the same orientation; also the tolerance of the unit-length and orthogonality checks.
        single_slice_spacing_mm: spacing along ``k`` for a one-slice series that has neither
            SpacingBetweenSlices nor SliceThickness; ``None`` refuses such a series.
    """

    spacing_rtol: float = 0.01
    spacing_atol_mm: float = 0.01
    orientation_atol: float = 1e-3
    single_slice_spacing_mm: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.spacing_rtol < 0 or self.spacing_atol_mm < 0 or self.orientation_atol < 0:
            raise ValueError("tolerances must be >= 0")
        if self.single_slice_spacing_mm is not None and not self.single_slice_spacing_mm > 0:
            raise ValueError(f"single_slice_spacing_mm must be > 0, got {self.single_slice_spacing_mm}")

    def position_tolerance(self, spacing: float) -> float:
        """Tolerance in mm for a slice position, given the stack's slice spacing in mm."""
        return max(self.spacing_atol_mm, self.spacing_rtol * abs(spacing))

    @classmethod
    def from_options(cls, options: ReadOptions | None) -> DicomReadOptions:
        """``options`` as DICOM options: itself if it already is one, else its shared fields with default tolerances."""
        if isinstance(options, DicomReadOptions):
            return options
        if options is None:
            return cls()
        return cls(**{f.name: getattr(options, f.name) for f in fields(ReadOptions)})
