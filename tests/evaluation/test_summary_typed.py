"""The typed summary: what summary.json holds is Summary.to_dict(), and the run page reads it back to the same
object (Summary.from_dict), EM scores included."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from app.evaluation import Summary, evaluate_folders


def test_summary_json_reads_back_to_the_same_summary(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "pred").mkdir()
    cells = np.full((32, 32), 255, np.uint8)
    cells[:, 15:17] = 0
    split = cells.copy()
    split[15:17, :] = 0  # a membrane the reference does not have
    Image.fromarray(cells).save(tmp_path / "ref" / "a.png")
    Image.fromarray(cells).save(tmp_path / "ref" / "b.png")
    Image.fromarray(split).save(tmp_path / "pred" / "a.png")  # "b" has no prediction
    run = evaluate_folders(tmp_path / "pred", tmp_path / "ref", labels={0: "membrane", 255: "cell"})

    data = json.loads(json.dumps(run.summary.to_dict()))
    again = Summary.from_dict(data)

    assert again == run.summary
    assert again.em is not None and again.em.flags == {"no_prediction": 1, "ok": 1}
    assert list(data["labels"]["cell"]) == ["label", "n", "flags", "metrics"]
    assert list(data["em"]) == ["cell_label", "n", "flags", "metrics"]
    assert again.mean("cell", "dice") == run.summary.labels["cell"].metrics["dice"].mean < 1.0
