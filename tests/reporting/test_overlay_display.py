"""Issue 18 item 2 at the figure: overlays on the image, a legend entry for every colour, and the axial/coronal
display convention stated in the figure (radiological by default: patient's right on the viewer's left)."""

from __future__ import annotations

import numpy as np
import pytest

from app.reporting.figures import overlay_figure
from app.volume import Volume


def _right_sided_case():
    """A RAS volume whose label and bright image blob lie on the patient's right (high x index, RAS +x)."""
    ref = np.zeros((32, 24, 20), np.uint8)
    ref[24:29, 10:14, 8:12] = 1
    image = np.where(ref > 0, 1000.0, 10.0)
    return Volume(ref, np.eye(4), "RAS"), Volume(image, np.eye(4), "RAS")


def _bright_columns(axes) -> np.ndarray:
    background = np.asarray(axes.images[0].get_array())
    return np.nonzero((background > 500).any(axis=0))[0]


@pytest.mark.parametrize(("display", "right_side_on"), [("radiological", "left"), ("neurological", "right")])
def test_axial_and_coronal_panels_follow_the_display_convention(display, right_side_on):
    ref, image = _right_sided_case()
    figure = overlay_figure(ref, ref, {1: "x"}, image=image, display=display)
    axial, coronal, sagittal = figure.axes[:3]
    for axes in (axial, coronal):
        columns = _bright_columns(axes)
        width = np.asarray(axes.images[0].get_array()).shape[1]
        assert columns.size
        assert (columns.max() < width / 2) if right_side_on == "left" else (columns.min() > width / 2)
        letters = {t.get_text(): t.get_position()[0] for t in axes.texts if t.get_text() in ("L", "R")}
        assert (letters["R"] < letters["L"]) == (right_side_on == "left")
    notes = " ".join(t.get_text() for t in figure.texts)
    assert f"{display} convention" in notes
    assert ("patient's right on the viewer's left" in notes) == (display == "radiological")


def test_default_is_radiological_and_every_colour_is_in_the_legend():
    ref, image = _right_sided_case()
    figure = overlay_figure(ref, None, {1: "anterior", 2: "posterior"}, image=image)
    assert "radiological convention" in " ".join(t.get_text() for t in figure.texts)
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend == [
        "anterior",
        "posterior",
        "reference",
        "prediction",
        "reference and prediction differ",
        "image (grey levels)",
    ]
    bare = overlay_figure(ref, None, {1: "anterior"})
    assert "no image given (black)" in [t.get_text() for t in bare.legends[0].get_texts()]
    assert float(np.asarray(bare.axes[0].images[0].get_array()).max()) == 0.0  # black, not label-valued fills


def test_a_missing_prediction_differs_only_where_the_reference_has_labels():
    ref, image = _right_sided_case()
    figure = overlay_figure(ref, None, {1: "x"}, image=image)
    shade = np.asarray(figure.axes[0].images[1].get_array())
    assert "(20 voxels differ)" in figure.axes[0].get_title()  # the blob's 5 x 4 axial cross-section
    assert int((shade[..., 3] > 0).sum()) == 20
