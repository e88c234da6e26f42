"""Source images prepared for highdicom's SEG constructor: copies that carry what highdicom 0.28 reads.

Contract:
    * input: the source images in the order :func:`app.writing.dicom_seg.write_dicom_seg` hands them to
      ``highdicom.seg.Segmentation`` (single-frame images in ``k`` order, or one enhanced multi-frame image) and
      the :class:`~app.writing.source_grid.SourceFrame` under each label slice (``k`` order).
    * output: the same images, each either the original (nothing to add) or a deep copy with the additions
      below. The originals are never modified and the copies are never saved; the SEG is built from them.

What highdicom 0.28 needs that real sources often lack (read in ``highdicom/seg/sop.py`` and
``highdicom/image.py:_get_pixel_measures_sequence``):
    * The Patient and General Study attributes it copies by attribute access (``src_img.PatientSex`` ...):
      :data:`TYPE2_ATTRIBUTES`. They are Type 2 (present, possibly empty) and anonymisers often delete them;
      an absent one is added **empty** to the copy, so the SEG carries it empty. No value is ever made up.
    * SliceThickness, which becomes the SEG's Pixel Measures SliceThickness. highdicom reads a single-frame
      image's ``SliceThickness`` (AttributeError when absent), and a SEG whose Pixel Measures lack it cannot be
      read back by highdicom (``PixelMeasuresSequence.from_sequence`` requires it). When the source has none
      (absent or empty: it is Type 2 in the Image Plane module; the Hitachi MR in ``../shared/data`` has only
      SpacingBetweenSlices), the SEG's is **the spacing between the label slices**, measured from the source
      frames' positions: a SEG frame stands for its slice of the label grid, and this is highdicom's own
      convention for a SEG written from a volume (``highdicom.Volume.get_pixel_measures``). With a single
      slice, the source's SpacingBetweenSlices is used; without that either, the source is refused.
    * For an enhanced multi-frame image, PixelMeasuresSequence and PlaneOrientationSequence in the Shared
      Functional Groups: highdicom reads them only there (even when ``pixel_measures`` is passed), while
      Philips writes them in every Per-Frame item. When every frame has the same item, the copy carries it in
      the shared group too (a shared group is made when the image has none); per-frame positions stay as they
      are. When frames differ, the source is refused (highdicom cannot derive a SEG from it).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from app.errors import InputError
from app.writing.source_grid import SourceFrame, dataset_path

if TYPE_CHECKING:
    from pydicom import Dataset

logger = logging.getLogger(__name__)

#: Type 2 attributes highdicom 0.28's Segmentation reads from the first source image by attribute access
TYPE2_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
)
#: functional groups highdicom 0.28 reads from a multi-frame source's shared group only
SHARED_GEOMETRY = ("PixelMeasuresSequence", "PlaneOrientationSequence")


def prepare_source_images(images: Sequence[Dataset], frames: Sequence[SourceFrame]) -> list[Dataset]:
    """``images`` with what highdicom needs added (see the module docstring), in the same order.

    Args:
        images: the source images as highdicom will get them (metadata is enough).
        frames: the source frame under each label slice, in ``k`` order (for the slice spacing).

    Raises:
        InputError: a multi-frame image whose frames differ in pixel measures or orientation, or a source
            without SliceThickness whose thickness cannot be derived (one slice, no SpacingBetweenSlices).
    """
    spacing = _slice_spacing(frames)
    prepared: list[Dataset] = []
    notes: dict[str, None] = {}  # ordered set: one log line for the whole series
    for dataset in images:
        ready, added = _prepared(dataset, spacing)
        prepared.append(ready)
        notes.update(dict.fromkeys(added))
    if notes:
        logger.info(
            "source images (first: %s): the SEG is built from copies of them with %s",
            dataset_path(images[0]) or images[0].get("SeriesInstanceUID", "?"),
            "; ".join(notes),
        )
    return prepared


def _prepared(dataset: Dataset, spacing: float | None) -> tuple[Dataset, list[str]]:
    missing = [keyword for keyword in TYPE2_ATTRIBUTES if keyword not in dataset]
    multi_frame = "PerFrameFunctionalGroupsSequence" in dataset
    unshared = _unshared_geometry(dataset) if multi_frame else {}
    if multi_frame:
        measures = unshared.get("PixelMeasuresSequence")
        if measures is None:
            measures = _shared_item(dataset, "PixelMeasuresSequence")
    else:
        measures = dataset
    needs_thickness = measures is not None and not _has_value(measures, "SliceThickness")
    if not (missing or unshared or needs_thickness):
        return dataset, []

    ready = copy.deepcopy(dataset)
    notes = []
    if missing:
        for keyword in missing:
            setattr(ready, keyword, "")  # Type 2: present and empty, never an invented value
        notes.append(f"the Type 2 attributes they lack present and empty ({', '.join(missing)})")
    if multi_frame:
        from pydicom import Dataset as PydicomDataset
        from pydicom.sequence import Sequence as PydicomSequence

        if "SharedFunctionalGroupsSequence" not in ready or not ready.SharedFunctionalGroupsSequence:
            ready.SharedFunctionalGroupsSequence = PydicomSequence([PydicomDataset()])
        shared = ready.SharedFunctionalGroupsSequence[0]
        for keyword, item in unshared.items():
            setattr(shared, keyword, PydicomSequence([copy.deepcopy(item)]))
        if unshared:
            notes.append(
                f"the per-frame {' and '.join(unshared)} (the same on every frame) in the shared group"
            )
        target = shared.PixelMeasuresSequence[0] if "PixelMeasuresSequence" in shared else None
    else:
        target = ready
    if needs_thickness and target is not None:
        thickness, origin = _thickness(dataset, target, spacing)
        target.SliceThickness = thickness
        notes.append(f"SliceThickness {thickness:g} mm, the {origin}, as the source has none")
    return ready, notes


def _unshared_geometry(dataset: Dataset) -> dict[str, Dataset]:
    """Functional group keyword -> the item every frame has, for the groups the shared group lacks."""
    per_frame = dataset.PerFrameFunctionalGroupsSequence
    found = {}
    for keyword in SHARED_GEOMETRY:
        if _shared_item(dataset, keyword) is not None:
            continue
        items = [
            item[keyword].value[0] if keyword in item and item[keyword].value else None for item in per_frame
        ]
        if not items or items[0] is None or any(other is None for other in items):
            raise InputError(
                dataset_path(dataset),
                f"multi-frame source image {dataset.get('SOPInstanceUID', '?')} has {keyword} neither in its "
                "shared functional groups nor in every per-frame item",
            )
        differing = next((number for number, item in enumerate(items, start=1) if item != items[0]), None)
        if differing is not None:
            raise InputError(
                dataset_path(dataset),
                f"multi-frame source image {dataset.get('SOPInstanceUID', '?')}: its per-frame {keyword} differs "
                f"between frame 1 and frame {differing}; highdicom can derive a SEG only from a multi-frame "
                "image whose frames share one pixel spacing and orientation (convert it to single-frame "
                "images, one series per orientation, and segment those)",
            )
        found[keyword] = items[0]
    return found


def _shared_group(dataset: Dataset) -> Dataset | None:
    sequence = dataset.get("SharedFunctionalGroupsSequence")
    return sequence[0] if sequence else None


def _shared_item(dataset: Dataset, keyword: str) -> Dataset | None:
    shared = _shared_group(dataset)
    if shared is None or keyword not in shared or not shared[keyword].value:
        return None
    return shared[keyword].value[0]


def _has_value(item: Dataset, keyword: str) -> bool:
    value = item.get(keyword)
    return value is not None and str(value).strip() != ""


def _slice_spacing(frames: Sequence[SourceFrame]) -> float | None:
    """Mean distance (mm) between consecutive label slices along the slice normal; ``None`` for one slice."""
    if len(frames) < 2:
        return None
    normal = np.cross(frames[0].row_cosine, frames[0].column_cosine)
    span = abs(float(np.dot(frames[-1].position - frames[0].position, normal)))
    return span / (len(frames) - 1) if span > 0 else None


def _thickness(dataset: Dataset, measures: Dataset, spacing: float | None) -> tuple[float, str]:
    if spacing is not None:
        return round(spacing, 6), "spacing between the label slices"
    if _has_value(measures, "SpacingBetweenSlices"):
        return float(measures.SpacingBetweenSlices), "source's SpacingBetweenSlices"
    raise InputError(
        dataset_path(dataset),
        f"source image {dataset.get('SOPInstanceUID', '?')} has no SliceThickness and no SpacingBetweenSlices, "
        "and the label map has one slice, so there is no slice spacing to give the SEG as its slice thickness "
        "(highdicom cannot read a SEG without one); add SliceThickness to the source image",
    )
