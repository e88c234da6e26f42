"""Statistics of a predicted label map without a reference: what a radiologist can check by eye.

Contract of :func:`case_statistics`: takes the image :class:`~app.volume.Volume` and the label Volume on its
grid (same shape; the label map's values are the bundle's ``channel_def`` keys) and the labels to describe
(value -> name), and returns a :class:`CaseStatistics`. Per label:

* ``voxels`` and, for 3D volumes, ``volume_ml`` (voxel count x ``|det(affine[:3, :3])|`` / 1000);
* ``components`` (connected components, full connectivity: 26 neighbours in 3D, 8 in 2D) and
  ``largest_component_share`` (voxels of the largest / all voxels of the label);
* ``bbox_min_ras_mm``, ``bbox_max_ras_mm``: the axis-aligned box of the label's voxel centres, and
  ``centroid_ras_mm`` (mean voxel centre), in patient coordinates of the RAS convention (+x right, +y anterior,
  +z superior; :mod:`app.volume`), whatever space the input was in (DICOM volumes are LPS: converted here with
  :meth:`Volume.in_space`);
* ``intensity``: mean, std, median, 5th and 95th percentile of the image inside the label, in the image's
  stored physical units (Hounsfield units for CT, the rescaled stored values for MR).

An empty label has ``voxels == 0`` and ``None`` for everything measured on voxels. For 2D pictures of a
membrane/cell bundle (``cell_label`` given), :class:`CellStatistics` adds the membrane fraction (pixels not
``cell_label``), the number of cells (4-connected components of ``cell_label``, as the EM scores count them,
:mod:`app.evaluation.em`) and their area distribution in pixels; a stack of pictures is counted slice by
slice. Pictures have no physical pixel size, so areas are in pixels.

Each label's work is done inside its bounding box (``scipy.ndimage.find_objects``), so the cost follows the
structures' size, not the volume's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from app.volume import Space, Volume

#: the world convention of every coordinate in the statistics (named in every column and key)
SPACE: Space = "RAS"
#: intensity unit by modality (DICOM Modality, or the bundle's input modality)
UNITS = {"CT": "HU", "MR": "stored MR values (after rescale)", "EM": "grey values"}


def intensity_unit(modality: str | None) -> str:
    """The unit of an image's intensities for ``modality`` (``""`` when unknown)."""
    return UNITS.get((modality or "").upper(), "")


@dataclass(frozen=True)
class Intensity:
    """The image inside one label, in the image's units."""

    mean: float
    std: float
    median: float
    p5: float
    p95: float


@dataclass(frozen=True)
class LabelStatistics:
    """One label of one case (module docstring); ``None`` where an empty label has nothing to measure."""

    label: int
    name: str
    voxels: int
    volume_ml: float | None
    components: int
    largest_component_share: float | None
    bbox_min_ras_mm: tuple[float, float, float] | None
    bbox_max_ras_mm: tuple[float, float, float] | None
    centroid_ras_mm: tuple[float, float, float] | None
    intensity: Intensity | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelStatistics:
        values = dict(data)
        for key in ("bbox_min_ras_mm", "bbox_max_ras_mm", "centroid_ras_mm"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        if values.get("intensity") is not None:
            values["intensity"] = Intensity(**values["intensity"])
        return cls(**values)


@dataclass(frozen=True)
class CellStatistics:
    """Membrane/cell pictures: membrane fraction, cells, and the cells' areas (pixels)."""

    membrane_fraction: float
    cells: int
    cell_area_mean_px: float | None
    cell_area_median_px: float | None
    cell_area_p5_px: float | None
    cell_area_p95_px: float | None


@dataclass(frozen=True)
class Flag:
    """One plausibility finding (:mod:`app.evaluation.plausibility`): the ``subject`` (a label name, ``cells``
    or ``input``), a ``code`` and a sentence for people."""

    subject: str
    code: str
    message: str


@dataclass(frozen=True)
class CaseStatistics:
    """The statistics of one case (``statistics.json``) and the flags raised on them."""

    space: str
    intensity_unit: str
    labels: tuple[LabelStatistics, ...]
    cells: CellStatistics | None = None
    flags: tuple[Flag, ...] = field(default=())

    def label(self, name: str) -> LabelStatistics | None:
        return next((s for s in self.labels if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseStatistics:
        """The inverse of :meth:`to_dict`.

        Raises:
            KeyError, TypeError: ``data`` is not a dict written by :meth:`to_dict`.
        """
        cells = data.get("cells")
        return cls(
            space=data["space"],
            intensity_unit=data["intensity_unit"],
            labels=tuple(LabelStatistics.from_dict(s) for s in data["labels"]),
            cells=CellStatistics(**cells) if cells is not None else None,
            flags=tuple(Flag(**f) for f in data.get("flags") or ()),
        )


def case_statistics(
    image: Volume,
    labels: Volume,
    names: Mapping[int, str],
    *,
    intensity_unit: str = "",
    cell_label: int | None = None,
) -> CaseStatistics:
    """The statistics of ``labels`` over ``image`` (module docstring).

    Raises:
        ValueError: the label map is not on the image's grid.
    """
    if labels.shape != image.shape:
        raise ValueError(
            f"{labels.source or 'labels'}: shape {labels.shape} is not the image's {image.shape}"
        )
    values = np.asarray(labels.array)
    affine = image.in_space(SPACE).affine
    boxes = ndimage.find_objects(np.where(np.isin(values, list(names)), values, 0).astype(np.int64))
    per_label = tuple(
        _label_statistics(
            image.array, values, affine, value, name, boxes[value - 1] if 0 < value <= len(boxes) else None
        )
        for value, name in names.items()
    )
    cells = cell_statistics(values, cell_label) if cell_label is not None else None
    return CaseStatistics(space=SPACE, intensity_unit=intensity_unit, labels=per_label, cells=cells)


def _label_statistics(
    image: np.ndarray,
    values: np.ndarray,
    affine: np.ndarray,
    value: int,
    name: str,
    box: tuple[slice, ...] | None,
) -> LabelStatistics:
    ndim = values.ndim
    if value == 0 or box is None:
        # value 0 has no find_objects box (it is the background of the lookup); measure it on the whole grid
        box = tuple(slice(0, n) for n in values.shape)
    mask = values[box] == value
    voxels = int(mask.sum())
    volume_ml = voxels * abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0 if ndim == 3 else None
    if voxels == 0:
        return LabelStatistics(value, name, 0, volume_ml, 0, None, None, None, None, None)
    components, count = ndimage.label(mask, structure=ndimage.generate_binary_structure(ndim, ndim))
    sizes = np.bincount(components.ravel())[1:]
    ijk = np.nonzero(mask)
    offset = np.array([s.start for s in box], dtype=np.float64)
    index = np.stack(ijk, axis=1).astype(np.float64) + offset
    index = np.concatenate([index, np.zeros((len(index), 3 - ndim)), np.ones((len(index), 1))], axis=1)
    world = index @ affine[:3].T
    inside = np.asarray(image[box][mask], dtype=np.float64)
    p5, median, p95 = np.percentile(inside, [5, 50, 95])
    return LabelStatistics(
        label=value,
        name=name,
        voxels=voxels,
        volume_ml=volume_ml,
        components=int(count),
        largest_component_share=float(sizes.max() / voxels),
        bbox_min_ras_mm=_triple(world.min(axis=0)),
        bbox_max_ras_mm=_triple(world.max(axis=0)),
        centroid_ras_mm=_triple(world.mean(axis=0)),
        intensity=Intensity(float(inside.mean()), float(inside.std()), float(median), float(p5), float(p95)),
    )


def cell_statistics(values: np.ndarray, cell_label: int) -> CellStatistics:
    """Membrane fraction, cells (4-connected ``cell_label`` components) and their areas, slice by slice."""
    slices: Sequence[np.ndarray] = (
        [values] if values.ndim == 2 else [values[..., k] for k in range(values.shape[-1])]
    )
    areas: list[np.ndarray] = []
    membrane = 0
    for plane in slices:
        cells = plane == cell_label
        membrane += int(cells.size - cells.sum())
        components, count = ndimage.label(cells)  # default structure: 4-connectivity
        areas.append(np.bincount(components.ravel())[1:] if count else np.zeros(0, dtype=np.int64))
    area = np.concatenate(areas).astype(np.float64)
    p5, median, p95 = (
        (float(v) for v in np.percentile(area, [5, 50, 95])) if area.size else (None, None, None)
    )
    return CellStatistics(
        membrane_fraction=membrane / float(values.size),
        cells=int(area.size),
        cell_area_mean_px=float(area.mean()) if area.size else None,
        cell_area_median_px=median,
        cell_area_p5_px=p5,
        cell_area_p95_px=p95,
    )


def _triple(values: np.ndarray) -> tuple[float, float, float]:
    return (round(float(values[0]), 3), round(float(values[1]), 3), round(float(values[2]), 3))
