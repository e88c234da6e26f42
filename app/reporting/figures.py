"""Pictures for the HTML report, rendered off-screen (matplotlib's Agg canvas, no pyplot global state).

Contract: every function returns PNG bytes.

* :func:`distribution_png`: one metric over cases, a box plot per label with every case drawn as a point,
  coloured by its policy flag; worst-case distances (misses) are drawn as triangles on the top edge so
  they stay visible without squashing the boxes.
* :func:`overlay_png` (:func:`overlay_figure` before rendering): reference (solid) and prediction (dashed)
  contours per label on the image in grey (without one: on black, and the legend says so), with disagreeing
  voxels shaded yellow; the legend names every colour. 3D volumes get three planes (axial, coronal, sagittal),
  each at the slice with the most disagreeing voxels; volumes are shown in the closest RAS orientation
  (nibabel's ``io_orientation``) with the pixel aspect from the voxel spacing, axial and coronal planes in the
  radiological convention by default (patient's right on the viewer's left, as radiologists read; ``display=
  "neurological"`` for the other), stated in the figure and by the R/L letters on each panel. 2D images are
  shown as pictures (rows down).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from app.evaluation.result import LabelResult
from app.volume import Volume

FLAG_COLOURS = {
    "ok": "#3b3b3b",
    "both_empty": "#1f77b4",
    "missed": "#d62728",
    "false_positive": "#ff7f0e",
    "no_prediction": "#9467bd",
    "error": "#8c564b",
}
LABEL_COLOURS = ("#2ca02c", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e", "#9467bd", "#8c564b", "#1f77b4")
_WORST_CASE_FLAGS = ("missed", "false_positive", "no_prediction", "error")
DPI = 100


def distribution_png(results: Sequence[LabelResult], metric: str, title: str, *, unit: str = "mm") -> bytes:
    """Box and strip plot of ``metric`` per label (label-value order); ``unit``: of a distance metric (``_mm``)."""
    names: dict[int, str] = {}
    for r in results:
        names.setdefault(r.label, r.name)
    order = sorted(names)
    is_distance = metric.endswith("_mm")
    figure = Figure(figsize=(1.8 + 1.5 * max(len(order), 1), 3.4), dpi=DPI)
    axes = figure.add_subplot()
    rng = np.random.default_rng(0)
    groups = [[r for r in results if r.label == value] for value in order]
    # distances of worst-case results are the grid diagonal: drawn on the top edge, left out of the boxes
    measured = [
        [getattr(r, metric) for r in g if not (is_distance and r.flag in _WORST_CASE_FLAGS)] for g in groups
    ]
    top = max((max(m) for m in measured if m), default=0.0) * 1.15 if is_distance else 1.03
    top = max(top, 1.0)
    for position, group in enumerate(groups, start=1):
        for r in group:
            x = position + rng.uniform(-0.18, 0.18)
            if is_distance and r.flag in _WORST_CASE_FLAGS:
                axes.plot(x, top, "^", ms=7, color=FLAG_COLOURS[r.flag], clip_on=False, zorder=4)
            else:
                axes.plot(x, getattr(r, metric), "o", ms=3.5, alpha=0.7, color=FLAG_COLOURS[r.flag], zorder=3)
    positions = [p for p, m in enumerate(measured, start=1) if m]
    if positions:
        axes.boxplot(
            [m for m in measured if m],
            positions=positions,
            widths=0.5,
            showfliers=False,
            medianprops={"color": "#c00000"},
        )
    axes.set_ylim(0 if is_distance else -0.03, top)
    axes.set_ylabel(f"{metric.removesuffix('_mm')} ({unit})" if is_distance else metric)
    axes.set_xlim(0.4, len(order) + 0.6)
    axes.set_xticks(range(1, len(order) + 1), [names[v] for v in order])
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    present = sorted({r.flag for r in results}, key=list(FLAG_COLOURS).index)
    handles = []
    for flag in present:
        worst = is_distance and flag in _WORST_CASE_FLAGS
        label = f"{flag} (worst case, at top)" if worst else flag
        handles.append(
            Line2D([], [], ls="", marker="^" if worst else "o", color=FLAG_COLOURS[flag], label=label)
        )
    axes.legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)
    figure.tight_layout()
    return _png(figure)


#: how axial and coronal planes are shown: "radiological" puts the patient's right on the viewer's left
Display = Literal["radiological", "neurological"]
DISPLAY_NOTES = {
    "radiological": "axial and coronal: radiological convention (patient's right on the viewer's left)",
    "neurological": "axial and coronal: neurological convention (patient's right on the viewer's right)",
}
#: colour (RGBA) of the voxels where reference and prediction disagree
DIFFER_RGBA = (1.0, 0.85, 0.0, 0.45)


def overlay_png(
    ref: Volume,
    pred: Volume | None,
    labels: Mapping[int, str],
    *,
    image: Volume | None = None,
    title: str = "",
    display: Display = "radiological",
) -> bytes:
    """Contours of ``pred`` and ``ref`` for ``labels`` on ``image`` (or on black), as PNG; see module doc."""
    return _png(overlay_figure(ref, pred, labels, image=image, title=title, display=display))


def overlay_figure(
    ref: Volume,
    pred: Volume | None,
    labels: Mapping[int, str],
    *,
    image: Volume | None = None,
    title: str = "",
    display: Display = "radiological",
) -> Figure:
    """The figure :func:`overlay_png` renders (module docstring)."""
    if display not in DISPLAY_NOTES:
        raise ValueError(f"display must be one of {sorted(DISPLAY_NOTES)}, got {display!r}")
    ref_map = _evaluated(ref.array, labels)
    # no prediction: nothing predicted (-1, like every value outside ``labels``; 0 would differ everywhere)
    pred_map = _evaluated(pred.array, labels) if pred is not None else np.full_like(ref_map, -1)
    has_image = image is not None and image.shape == ref_map.shape
    background = (
        np.asarray(image.array, dtype=np.float32)
        if image is not None and has_image
        else np.zeros(ref_map.shape, np.float32)
    )
    if ref.ndim == 2:
        panels = [("", ref_map.T, pred_map.T, background.T, 1.0, None)]
        origin: Literal["upper", "lower"] = "upper"
    else:
        panels = _planes(ref, ref_map, pred_map, background, display)
        origin = "lower"
    finite = background[np.isfinite(background)]
    low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    high = high if high > low else low + 1
    # 3D: three 3.2-inch panels side by side; 2D: one larger picture
    figure = Figure(figsize=(3.2 * len(panels), 3.7) if len(panels) > 1 else (5.6, 6.3), dpi=DPI)
    for index, (name, ref_slice, pred_slice, back_slice, aspect, letters) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        axes.imshow(
            back_slice,
            cmap="gray",
            vmin=low,
            vmax=high,
            origin=origin,
            aspect=aspect,
            interpolation="nearest",
        )
        differ = ref_slice != pred_slice
        shade = np.zeros((*differ.shape, 4), dtype=np.float32)
        shade[differ] = DIFFER_RGBA
        axes.imshow(shade, origin=origin, aspect=aspect, interpolation="nearest")
        for colour_index, value in enumerate(labels):
            colour = LABEL_COLOURS[colour_index % len(LABEL_COLOURS)]
            _contour(axes, ref_slice == value, colour, "solid")
            _contour(axes, pred_slice == value, colour, "dashed")
        axes.set_title(
            f"{name} ({int(differ.sum())} voxels differ)" if name else f"{int(differ.sum())} pixels differ",
            fontsize=8,
        )
        axes.set_xticks([])
        axes.set_yticks([])
        if letters:
            for x, y, text in ((0.02, 0.5, letters[0]), (0.98, 0.5, letters[1]), (0.5, 0.97, letters[2])):
                axes.text(
                    x,
                    y,
                    text,
                    transform=axes.transAxes,
                    color="#ffd700",
                    fontsize=9,
                    fontweight="bold",
                    ha="center",
                    va="center",
                    path_effects=[patheffects.withStroke(linewidth=2, foreground="black")],
                )
    handles: list[Any] = [
        Line2D([], [], color=LABEL_COLOURS[i % len(LABEL_COLOURS)], label=name)
        for i, name in enumerate(labels.values())
    ]
    handles += [
        Line2D([], [], color="#777", ls="solid", label="reference"),
        Line2D([], [], color="#777", ls="dashed", label="prediction"),
        Patch(facecolor=DIFFER_RGBA, edgecolor="none", label="reference and prediction differ"),
        Patch(
            facecolor="#808080" if has_image else "black",
            edgecolor="#444",
            label="image (grey levels)" if has_image else "no image given (black)",
        ),
    ]
    bottom = 0.06 if ref.ndim == 3 else 0.0
    figure.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, bottom),
        ncol=min(len(handles), 4),
        fontsize=7,
        frameon=False,
    )
    if ref.ndim == 3:
        figure.text(
            0.5, 0.015, DISPLAY_NOTES[display] + "; letters: patient directions", fontsize=7, ha="center"
        )
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout(rect=(0, bottom + 0.12, 1, 0.95 if title else 1))
    return figure


def _planes(
    ref: Volume, ref_map: np.ndarray, pred_map: np.ndarray, background: np.ndarray, display: Display
) -> list[tuple]:
    """Axial, coronal and sagittal slices at the largest disagreement, in closest-RAS display orientation;
    axial and coronal mirrored left-right for the radiological ``display``."""
    from nibabel.orientations import apply_orientation, io_orientation

    ornt = io_orientation(ref.affine)
    ref_ras = apply_orientation(ref_map, ornt)
    pred_ras = apply_orientation(pred_map, ornt)
    back_ras = apply_orientation(background, ornt)
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = np.linalg.norm(ref.affine[:3, :3], axis=0)
    differ = ref_ras != pred_ras
    panels = []
    # (name, array axis sliced, display letters left/right/top)
    for name, axis, letters in (
        ("axial", 2, ("L", "R", "A")),
        ("coronal", 1, ("L", "R", "S")),
        ("sagittal", 0, ("P", "A", "S")),
    ):
        others = tuple(a for a in range(3) if a != axis)
        index = _busiest(differ, ref_ras > 0, axis)
        take: list[slice | int] = [slice(None)] * 3
        take[axis] = index
        # rows follow the second remaining axis (up), columns the first (right)
        aspect = spacing[others[1]] / spacing[others[0]]
        slices = [array[tuple(take)].T for array in (ref_ras, pred_ras, back_ras)]
        if display == "radiological" and name != "sagittal":
            # columns run to the patient's right (RAS +x); mirrored, the patient's right is on the viewer's left
            slices = [np.flip(plane, axis=1) for plane in slices]
            letters = (letters[1], letters[0], letters[2])
        panels.append((f"{name} {index}", *slices, aspect, letters))
    return panels


def _busiest(differ: np.ndarray, foreground: np.ndarray, axis: int) -> int:
    """Slice index along ``axis`` with the most disagreement (else the most foreground, else the middle)."""
    others = tuple(a for a in range(differ.ndim) if a != axis)
    for mask in (differ, foreground):
        counts = mask.sum(axis=others)
        if counts.any():
            return int(np.argmax(counts))
    return differ.shape[axis] // 2


def _evaluated(array: np.ndarray, labels: Mapping[int, str]) -> np.ndarray:
    """The label map with values outside ``labels`` set to -1 (so they neither draw nor count as differing)."""
    array = np.asarray(array).astype(np.int64)  # signed first: -1 must not wrap around in a uint8 map
    return np.where(np.isin(array, list(labels)), array, -1)


def _contour(axes, mask: np.ndarray, colour: str, style: str) -> None:
    if mask.shape[0] < 2 or mask.shape[1] < 2 or not mask.any() or mask.all():
        return
    axes.contour(mask.astype(np.float32), levels=[0.5], colors=[colour], linestyles=style, linewidths=1.3)


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
