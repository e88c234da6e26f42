"""Stack geometry of a DICOM series: validation, slice order and the voxel -> LPS affine.

Works on :class:`SliceRef` records (one 2D image: a classic file or one frame of a multi-frame file) and never
touches pixels. Conventions (see :mod:`app.volume`):

* ``i`` runs along a row (ImageOrientationPatient[:3], step = PixelSpacing[1], the *column* spacing),
* ``j`` runs down a column (ImageOrientationPatient[3:], step = PixelSpacing[0], the *row* spacing),
* ``k`` runs along the slice normal ``n = row cosine x column cosine``, slices sorted by ``position . n``
  ascending, so the third affine column is ``+n * spacing``.

What is refused (each :class:`~app.errors.InputError` names the files): missing or non-finite geometry,
non-orthonormal orientation, mixed orientations, mixed Rows/Columns or PixelSpacing, slice positions off the
line along the normal (**gantry tilt**: a tilted CT stack is a sheared grid that an affine cannot describe; we
refuse it rather than resample silently), non-uniform spacing or missing slices. The position tolerance is
``DicomReadOptions.position_tolerance(spacing)`` = max(0.01 mm, 1 % of the slice spacing) by default.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.errors import InputError
from app.loading.dicom.header import FrameGeometry, InstanceHeader
from app.loading.dicom.options import DicomReadOptions

#: a position or spacing beyond this (1 km) is a corrupt header, not a patient
MAX_COORDINATE_MM = 1e6


@dataclass(frozen=True)
class SliceRef:
    """One 2D image of a series: ``header.frames[frame_index]``; ``root``: the folder the series' files share,
    which messages name the file relative to."""

    header: InstanceHeader
    frame_index: int = 0
    root: Path | None = None

    @property
    def geometry(self) -> FrameGeometry:
        return self.header.frames[self.frame_index]

    @property
    def label(self) -> str:
        """The file relative to the series' shared folder (its name when the series is one folder; with the
        subfolder when it spans several, as an archive holding the same series twice), plus the 1-based frame
        number for multi-frame files (for messages)."""
        path = self.header.path
        name = path.name
        if self.root is not None:
            try:
                name = path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        frame = self.geometry.frame_number
        return name if frame is None else f"{name} frame {frame}"


@dataclass(frozen=True)
class StackGeometry:
    """Result of :func:`stack_geometry`: the affine of the validated stack."""

    affine: np.ndarray  # 4x4 float64, voxel (i, j, k) -> LPS mm
    slice_spacing: float  # mm along k


def series_folder(slices: Sequence[SliceRef]) -> Path:
    """The folder an error about ``slices`` is reported against (the common parent of their files)."""
    return shared_folder([s.header.path for s in slices])


def shared_folder(paths: Sequence[Path]) -> Path:
    """The deepest folder holding every one of ``paths``."""
    parents = {path.parent for path in paths}
    return parents.pop() if len(parents) == 1 else Path(*_common_parts([p.parts for p in parents]))


def _common_parts(parts: list[tuple[str, ...]]) -> tuple[str, ...]:
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return tuple(common) or (".",)


def _examples(slices: Sequence[SliceRef], limit: int = 3) -> str:
    names = [s.label for s in slices[:limit]]
    more = f" and {len(slices) - limit} more" if len(slices) > limit else ""
    return ", ".join(names) + more


def _fmt(values: Sequence[float] | None) -> str:
    return "missing" if values is None else "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def check_uniform(slices: Sequence[SliceRef], options: DicomReadOptions) -> None:
    """Refuse missing/non-finite geometry and mixed orientation, image size or pixel spacing."""
    where = series_folder(slices)
    for s in slices:
        g = s.geometry
        for name, values, n in (
            ("ImagePositionPatient", g.position, 3),
            ("ImageOrientationPatient", g.orientation, 6),
            ("PixelSpacing", g.pixel_spacing, 2),
        ):
            if values is None or len(values) != n:
                raise InputError(
                    where,
                    f"{s.label}: {name} is {_fmt(values)} (expected {n} numbers); "
                    "the slice cannot be placed in space",
                )
            if not all(math.isfinite(v) for v in values):
                raise InputError(where, f"{s.label}: non-finite geometry, {name} {_fmt(values)}")
            if not all(abs(v) <= MAX_COORDINATE_MM for v in values):
                raise InputError(
                    where,
                    f"{s.label}: {name} {_fmt(values)} is out of range (more than {MAX_COORDINATE_MM:g} mm); "
                    "the header is corrupt",
                )
        if not all(v > 0 for v in g.pixel_spacing or ()):
            raise InputError(where, f"{s.label}: PixelSpacing {_fmt(g.pixel_spacing)} must be positive")

    _refuse_mixed(slices, lambda s: (s.header.rows, s.header.columns), "image sizes (Rows, Columns)", where)
    first = np.asarray(slices[0].geometry.orientation)
    groups: list[tuple[np.ndarray, list[SliceRef]]] = [(first, [])]
    for s in slices:
        o = np.asarray(s.geometry.orientation)
        for ref, members in groups:
            if np.max(np.abs(o - ref)) <= options.orientation_atol:
                members.append(s)
                break
        else:
            groups.append((o, [s]))
    if len(groups) > 1:
        parts = "; ".join(f"{len(m)} with {_fmt(tuple(ref))} (e.g. {_examples(m, 2)})" for ref, m in groups)
        raise InputError(
            where,
            f"mixed orientations (ImageOrientationPatient): {parts}; a volume needs one "
            "orientation: select or split the series",
        )
    row, col = first[:3], first[3:]
    tol = options.orientation_atol
    if abs(np.linalg.norm(row) - 1) > tol or abs(np.linalg.norm(col) - 1) > tol or abs(row @ col) > tol:
        raise InputError(
            where,
            f"ImageOrientationPatient {_fmt(tuple(first))} is not two orthogonal unit "
            f"vectors (e.g. {slices[0].label})",
        )
    spacings = np.asarray([s.geometry.pixel_spacing for s in slices])
    if not np.allclose(spacings, spacings[0], rtol=1e-4, atol=1e-4):
        _refuse_mixed(slices, lambda s: s.geometry.pixel_spacing, "PixelSpacing", where)


def _refuse_mixed(
    slices: Sequence[SliceRef], key: Callable[[SliceRef], Hashable], what: str, where: Path
) -> None:
    counts = Counter(key(s) for s in slices)
    if len(counts) > 1:
        parts = "; ".join(
            f"{n} with {value} (e.g. {_examples([s for s in slices if key(s) == value], 2)})"
            for value, n in counts.most_common()
        )
        raise InputError(where, f"different {what} in one series: {parts}")


def slice_normal(orientation: Sequence[float] | np.ndarray) -> np.ndarray:
    """Unit normal ``row cosine x column cosine`` of an ImageOrientationPatient (6 numbers)."""
    o = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(o[:3], o[3:])
    return normal / np.linalg.norm(normal)


def group_by_position(slices: Sequence[SliceRef], options: DicomReadOptions) -> list[list[SliceRef]]:
    """Slices grouped by their distance along the normal, groups sorted ascending.

    Two slices share a position when their distances differ by at most ``options.spacing_atol_mm``. Call after
    :func:`check_uniform` (one orientation).
    """
    normal = slice_normal(slices[0].geometry.orientation or ())
    ordered = sorted(slices, key=lambda s: float(np.dot(np.asarray(s.geometry.position, float), normal)))
    groups: list[list[SliceRef]] = []
    last = -math.inf
    for s in ordered:
        d = float(np.dot(np.asarray(s.geometry.position, float), normal))
        if groups and d - last <= options.spacing_atol_mm:
            groups[-1].append(s)
        else:
            groups.append([s])
        last = d
    return groups


def stack_geometry(slices: Sequence[SliceRef], options: DicomReadOptions) -> StackGeometry:
    """Affine of ``slices`` (one per position, sorted by :func:`group_by_position`), after checking the stack.

    Raises:
        InputError: gantry tilt / sheared stack, non-uniform spacing or missing slices, or a single slice whose
            spacing along ``k`` is unknown.
    """
    where = series_folder(slices)
    first = slices[0].geometry
    orientation = np.asarray(first.orientation, dtype=np.float64)
    row_spacing, column_spacing = first.pixel_spacing or (math.nan, math.nan)
    normal = slice_normal(orientation)
    origin = np.asarray(first.position, dtype=np.float64)
    positions = np.asarray([s.geometry.position for s in slices], dtype=np.float64)
    offsets = positions - origin
    along = offsets @ normal

    if len(slices) == 1:
        spacing = _single_slice_spacing(slices[0], options, where)
    else:
        spacing = float(along[-1] / (len(slices) - 1))
        tol = options.position_tolerance(spacing)
        across = np.linalg.norm(offsets - np.outer(along, normal), axis=1)
        problems = [
            _tilt_problem(slices, along, across, tol) if np.max(across) > tol else None,
            _spacing_problem(slices, along, tol)
            if np.max(np.abs(along - spacing * np.arange(len(slices)))) > tol
            else None,
        ]
        if any(problems):
            raise InputError(where, "; also ".join(p for p in problems if p))

    affine = np.eye(4)
    affine[:3, 0] = orientation[:3] * column_spacing
    affine[:3, 1] = orientation[3:] * row_spacing
    affine[:3, 2] = normal * spacing
    affine[:3, 3] = origin
    return StackGeometry(affine=affine, slice_spacing=spacing)


def _single_slice_spacing(s: SliceRef, options: DicomReadOptions, where: Path) -> float:
    g = s.geometry
    for value in (g.spacing_between_slices, g.slice_thickness, options.single_slice_spacing_mm):
        if value is not None and math.isfinite(value) and value > 0:
            return float(value)
    raise InputError(
        where,
        f"{s.label}: a single slice without SpacingBetweenSlices or SliceThickness: the "
        "spacing along k cannot be determined (set single_slice_spacing_mm to read it anyway)",
    )


def _tilt_problem(slices: Sequence[SliceRef], along: np.ndarray, across: np.ndarray, tol: float) -> str:
    worst = int(np.argmax(across))
    angle = math.degrees(math.atan2(across[worst], abs(along[worst])))
    tilt = slices[0].header.gantry_tilt
    declared = f", GantryDetectorTilt {tilt:g}" if tilt is not None else ""
    return (
        f"gantry tilt / sheared stack: slice positions move {across[worst]:.3g} mm across the slice plane between "
        f"{slices[0].label} and {slices[worst].label} (about {angle:.1f} degrees{declared}; tolerance {tol:.3g} mm). "
        "A tilted acquisition is not a regular grid and is refused rather than resampled silently; "
        "reconstruct it without tilt or resample it first (e.g. dcm2niix corrects gantry tilt)"
    )


def _spacing_problem(slices: Sequence[SliceRef], along: np.ndarray, tol: float) -> str:
    gaps = np.diff(along)
    median = typical = float(np.median(gaps))
    smallest = float(gaps.min())
    if 0 < smallest < typical and all(abs(g - round(g / smallest) * smallest) <= tol for g in gaps):
        typical = (
            smallest  # every gap a multiple of the smallest (few slices left): a regular stack with holes
        )
    detail = (
        f"gaps between consecutive slices range {gaps.min():.4g}-{gaps.max():.4g} mm (median {median:.4g} mm)"
    )
    missing = [
        f"between {slices[i].label} and {slices[i + 1].label} ({gap:.4g} mm, ~{round(gap / typical) - 1} missing)"
        for i, gap in enumerate(gaps)
        if typical > 0 and round(gap / typical) >= 2 and abs(gap - round(gap / typical) * typical) <= tol
    ]
    if missing:
        return f"missing slice(s), non-uniform slice spacing: {detail}; gap " + "; ".join(missing)
    irregular = [
        f"{slices[i].label}->{slices[i + 1].label} {gap:.4g} mm"
        for i, gap in enumerate(gaps)
        if abs(gap - typical) > tol
    ]
    where_text = "; ".join(irregular[:5]) if irregular else "positions drift from a regular grid"
    return f"non-uniform slice spacing: {detail}, tolerance {tol:.3g} mm; irregular: {where_text}"
