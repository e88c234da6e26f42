"""Issue 18 item 2, as a user runs it (a subprocess): the demo's report.html shows real paths in its header and
draws its overlays on the MRI."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image


def test_demo_report_has_real_paths_and_overlays_on_the_mri(unetseg_cli, toy_bundle, tmp_path):
    out = tmp_path / "demo"
    result = unetseg_cli("demo", "--out", out, "--bundle", toy_bundle, "--device", "cpu")
    assert result.returncode in (0, 1), result.stderr  # toy weights: scored, whatever the Dice
    html = (out / "report.html").read_text()
    # one page: the run's cases (statistics, previews) with the evaluation's page embedded as its scores section
    assert "<h1>unetseg run report</h1>" in html and '<section id="scores">' in html
    assert (out / "scores.html").is_file()

    header = {k: v for k, v in re.findall(r"<tr><th[^>]*>([^<]+)</th><td[^>]*>([^<]*)</td></tr>", html)}
    assert header["pred"].startswith(str(out)), header
    assert header["ref"] == str(out / "reference")
    assert "app/demo/data/dicom" in header["images"] and header["images"] != "None"
    assert "unetseg-scoring-" not in html

    pictures = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    overlays = [p for p in pictures if Image.open(io.BytesIO(base64.b64decode(p))).size[1] >= 350]
    assert overlays, "no overlay picture in the report"
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(overlays[0]))).convert("RGB")).astype(int)
    grey = (np.ptp(pixels, axis=2) <= 3) & (pixels[..., 0] > 30) & (pixels[..., 0] < 220)
    assert grey.sum() > 20000, "the overlay is not drawn on the image"
