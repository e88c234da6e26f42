"""``preview.png``: a picture of one case's prediction on its image, for a person to check at a glance.

Contract of :func:`preview_png` (PNG bytes):

* 3D volumes: three planes (axial, coronal, sagittal) through the centre of mass of all labelled voxels,
  after reorienting the arrays to the closest RAS axes (nibabel's ``io_orientation``; no resampling, so an
  oblique volume is shown in its own voxel grid). Display convention: **radiological**, the patient's right on
  the viewer's left in the axial and coronal planes, anterior on the left in the sagittal plane, superior
  (axial: anterior) up; orientation letters at all four edges; the pixel aspect from the voxel spacing.
* 2D pictures (and the middle page of a picture stack): the picture as stored (rows down).
* labels: a translucent fill with a fully opaque one-pixel outline (the label's edge inside it) in one colour
  per label (:data:`COLOURS`), a legend with the bundle's ``channel_def`` names; orientation letters outside
  the panels' edges.
* window: CT in Hounsfield units with a soft-tissue window (:data:`CT_WINDOW`, level 40 / width 400); every
  other modality the 1st-99th percentile of the image (pictures: 0.5th-99.5th).

The overlay is painted into the image pixels (not drawn as matplotlib contours) and the text drawn with Pillow in
matplotlib's DejaVu fonts: a matplotlib figure spent two thirds of the preview's time laying out text and
resampling the image, which took the preview past its 10% share of a hippocampus case's time
(``scripts/bench_qa.py``); this way it costs about 10 ms.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import to_rgb
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from app.volume import Volume

#: label colours in channel_def order (saturated, so that they stand out from a grey image)
COLOURS = ("#ff2020", "#2070ff", "#20e040", "#ffd000", "#ff20ff", "#00e0e0", "#ff8000", "#a050ff")
#: (level, width) in HU for CT
CT_WINDOW = (40.0, 400.0)
FILL_ALPHA = 0.45
TEXT = "#202020"

#: (plane, axis sliced in RAS order, column axis, row axis, flip columns, letters left/right/top/bottom)
_PLANES = (
    ("axial", 2, 0, 1, True, ("R", "L", "A", "P")),
    ("coronal", 1, 0, 2, True, ("R", "L", "S", "I")),
    ("sagittal", 0, 1, 2, True, ("A", "P", "S", "I")),
)


def preview_png(
    image: Volume,
    labels: Volume,
    names: Mapping[int, str],
    *,
    modality: str | None = None,
    picture: bool = False,
    title: str = "",
) -> bytes:
    """The preview of ``labels`` (values ``names``) on ``image`` (module docstring)."""
    if labels.shape != image.shape:
        raise ValueError(
            f"{labels.source or 'labels'}: shape {labels.shape} is not the image's {image.shape}"
        )
    colours = {value: COLOURS[i % len(COLOURS)] for i, value in enumerate(names)}
    if picture or image.ndim == 2:
        back, lab = np.asarray(image.array), np.asarray(labels.array)
        if back.ndim == 3:  # a stack of pictures: its middle page
            back, lab = back[..., back.shape[-1] // 2], lab[..., lab.shape[-1] // 2]
        panels = [("", back.T, lab.T, None, None)]
        low, high = _window(back, modality, (0.5, 99.5))
    else:
        panels = _planes(image, labels, names)
        low, high = _window(image.array, modality, (1.0, 99.0))
    rendered = [
        _resized(_composite(b, lab, colours, low, high), aspect, 256 if aspect else 420)
        for _, b, lab, aspect, _ in panels
    ]
    # one canvas of pixels with the text drawn around the panels: letters sit outside the panels in the white
    # margin, so they need no outline and never hide the image
    gap, top_margin, bottom_margin = 40, (54 if title else 34), 48
    width = sum(r.shape[1] for r in rendered) + gap * (len(rendered) + 1)
    height = max(r.shape[0] for r in rendered) + top_margin + bottom_margin
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    boxes = []
    x = gap
    for rgb in rendered:
        top = top_margin + (height - top_margin - bottom_margin - rgb.shape[0]) // 2
        canvas[top : top + rgb.shape[0], x : x + rgb.shape[1]] = rgb
        boxes.append((x, top, x + rgb.shape[1], top + rgb.shape[0]))
        x += rgb.shape[1] + gap
    page = Image.fromarray(canvas)
    draw = ImageDraw.Draw(page)
    for (name, _, _, _, letters), (left, top, right, bottom) in zip(panels, boxes, strict=True):
        centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
        if name:
            draw.text((centre_x, top - 20), name, fill=TEXT, font=_font(11), anchor="mb")
        if letters:
            places = (
                (left - 10, centre_y),
                (right + 10, centre_y),
                (centre_x, top - 9),
                (centre_x, bottom + 9),
            )
            for place, letter in zip(places, letters, strict=True):
                draw.text(place, letter, fill=TEXT, font=_font(11, bold=True), anchor="mm")
    entries = [(colours[v], f"{v}: {n}") for v, n in names.items()]
    spacing = width / (len(entries) + 1)
    for i, (colour, text) in enumerate(entries, start=1):
        x0 = spacing * i - draw.textlength(text, font=_font(11)) / 2
        draw.rectangle((x0 - 14, height - 33, x0 - 4, height - 23), fill=colour)
        draw.text((x0, height - 28), text, fill=colour, font=_font(11), anchor="lm")
    note = "radiological view (patient right on viewer's left), " if len(panels) > 1 else ""
    draw.text(
        (width / 2, height - 4), f"{note}window {low:.4g}-{high:.4g}", fill=TEXT, font=_font(9), anchor="mb"
    )
    if title:
        draw.text((width / 2, 6), title, fill=TEXT, font=_font(13), anchor="mt")
    buffer = io.BytesIO()
    # zlib level 1: a third of the encoding time of the default level, for a few kB more
    page.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@functools.lru_cache(maxsize=8)
def _font(size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
    """matplotlib's DejaVu Sans (shipped with it, so always there) at ``size`` pixels."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


def _resized(rgb: np.ndarray, aspect: float | None, size: int) -> np.ndarray:
    """``rgb`` scaled by nearest neighbour so its longer side is about ``size`` pixels, rows stretched by
    ``aspect`` (row spacing / column spacing; ``None`` for square pixels)."""
    rows, columns = rgb.shape[:2]
    physical_rows = rows * (aspect or 1.0)
    scale = size / max(physical_rows, columns)
    out_rows, out_columns = max(1, round(physical_rows * scale)), max(1, round(columns * scale))
    row_index = np.minimum((np.arange(out_rows) + 0.5) * rows / out_rows, rows - 1).astype(int)
    column_index = np.minimum((np.arange(out_columns) + 0.5) * columns / out_columns, columns - 1).astype(int)
    return rgb[row_index][:, column_index]


def _planes(image: Volume, labels: Volume, names: Mapping[int, str]) -> list[tuple]:
    """The three planes through the labelled voxels' centre of mass, in display orientation (rows down)."""
    from nibabel.orientations import apply_orientation, io_orientation

    ras = image.in_space("RAS")
    ornt = io_orientation(ras.affine)
    back = apply_orientation(np.asarray(image.array), ornt)
    lab = apply_orientation(np.asarray(labels.array), ornt)
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = np.linalg.norm(ras.affine[:3, :3], axis=0)
    foreground = np.isin(lab, list(names))
    centre = (
        np.round(ndimage.center_of_mass(foreground)).astype(int)
        if foreground.any()
        else np.array(lab.shape) // 2
    )
    panels = []
    for name, axis, column_axis, row_axis, flip_columns, letters in _PLANES:
        take: list[slice | int] = [slice(None)] * 3
        take[axis] = int(centre[axis])
        # remaining axes in order (column_axis, row_axis) after removing `axis`: transpose to rows x columns
        back_slice, label_slice = back[tuple(take)].T, lab[tuple(take)].T
        back_slice, label_slice = back_slice[::-1], label_slice[::-1]  # the row axis's + direction up
        if flip_columns:
            back_slice, label_slice = back_slice[:, ::-1], label_slice[:, ::-1]
        aspect = spacing[row_axis] / spacing[column_axis]
        panels.append((f"{name} {int(centre[axis])}", back_slice, label_slice, aspect, letters))
    return panels


def _window(array: np.ndarray, modality: str | None, percentiles: tuple[float, float]) -> tuple[float, float]:
    if (modality or "").upper() == "CT":
        level, width = CT_WINDOW
        return level - width / 2, level + width / 2
    flat = np.asarray(array).ravel()
    flat = flat[:: max(1, flat.size // 1_000_000)].astype(np.float64)
    flat = flat[np.isfinite(flat)]
    low, high = np.percentile(flat, percentiles) if flat.size else (0.0, 1.0)
    return float(low), float(high if high > low else low + 1)


def _composite(
    back: np.ndarray, labels: np.ndarray, colours: Mapping[int, str], low: float, high: float
) -> np.ndarray:
    """Grey image with each label's translucent fill and opaque edge painted in, as 8-bit RGB."""
    grey = np.clip((np.asarray(back, dtype=np.float32) - low) / (high - low), 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    for value, colour in colours.items():
        mask = labels == value
        if not mask.any():
            continue
        colour_rgb = np.array(to_rgb(colour), dtype=np.float32)
        rgb[mask] = (1 - FILL_ALPHA) * rgb[mask] + FILL_ALPHA * colour_rgb
        edge = mask & ~ndimage.binary_erosion(mask, border_value=1)
        rgb[edge] = colour_rgb
    return np.round(rgb * 255).astype(np.uint8)
