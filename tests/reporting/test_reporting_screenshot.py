"""The HTML report as a person sees it: rendered by headless Chromium into a screenshot."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.evaluation import evaluate_case
from app.reporting import CaseVolumes, write_reports
from app.reporting.screenshot import find_chromium, render_png
from app.volume import Volume


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    if find_chromium() is None:
        pytest.skip("no Chromium on PATH (Debian: apt-get install -y chromium)")
    ref = np.zeros((24, 20, 12), np.uint8)
    ref[4:14, 4:16, 2:10] = 1
    ref[14:20, 4:16, 2:10] = 2
    affine = np.diag([0.8, 0.8, 2.0, 1.0])
    results, volumes = [], {}
    for shift in range(4):
        pred = np.roll(ref, shift, axis=0)
        cid = f"case_{shift}"
        volumes[cid] = CaseVolumes(ref=Volume(ref, affine), pred=Volume(pred, affine))
        results += evaluate_case(
            volumes[cid].pred, volumes[cid].ref, {1: "anterior", 2: "posterior"}, case_id=cid
        )
    paths = write_reports(results, tmp_path / "out", volumes=volumes, worst=2)
    png = render_png(paths.report_html, tmp_path / "shot.png", width=1000, height=1600)
    picture = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    assert picture.shape == (1600, 1000)
    # not blank: text, table borders and plots make the page far from uniform
    assert picture.std() > 20
    assert (picture < 128).mean() > 0.01
