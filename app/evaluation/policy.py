"""Empty-mask policy: what every metric is when the prediction or the reference of a label is empty.

Each label of each case is classified by whether its prediction mask P and reference mask R are empty,
and the result carries that class as its ``flag``:

* ``ok`` (P and R both non-empty): every metric is measured. Precision = TP/(TP+FP), recall = TP/(TP+FN).
* ``both_empty`` (P and R empty): a correct "absent". Dice = IoU = precision = recall = NSD = 1,
  Hausdorff = HD95 = ASSD = 0 mm.
* ``missed`` (R non-empty, P empty): Dice = IoU = precision = recall = NSD = 0; Hausdorff, HD95 and ASSD
  equal the worst case, the diagonal of the reference grid's field of view ``||shape * spacing||`` in mm.
  Precision is 0/0 here and is set to 0, not left undefined: a structure that was not found scores 0 on
  every overlap measure.
* ``false_positive`` (R empty, P non-empty): the same values as ``missed`` (recall is 0/0 and set to 0).
* ``no_prediction`` (the case has a reference but no prediction file) and ``error`` (the prediction could
  not be read or is not on the reference grid): every label of the case gets the ``missed`` values, so a
  case the model failed on costs it in the averages. The error message is kept with the result.

No metric is ever NaN. Summaries include every result of every flag (a miss pulls the mean Dice down and
the mean HD95 up; it never drops out of an average) and count each flag per label, so both-empty
"successes" and worst-case failures are visible next to the statistics. A reference that cannot be read at
all is a failed case with no metrics: it is listed, and counted, but cannot be scored.
"""

from __future__ import annotations

import inspect
from typing import Literal

Flag = Literal["ok", "both_empty", "missed", "false_positive", "no_prediction", "error"]

#: every flag, in the order reports list them
FLAGS: tuple[Flag, ...] = ("ok", "both_empty", "missed", "false_positive", "no_prediction", "error")

#: the policy as plain text (this module's docstring without reST markup), recorded in summary.json and
#: shown in report.html; under ``python -OO`` docstrings are stripped and it is empty
POLICY_TEXT = inspect.cleandoc(__doc__ or "").replace("``", "")

#: metrics that are 1 for a perfect result and 0 in the worst case
SCORE_METRICS = ("dice", "iou", "precision", "recall", "nsd")
#: distances in mm: 0 for a perfect result, the grid diagonal in the worst case
DISTANCE_METRICS = ("hd_mm", "hd95_mm", "assd_mm")


def classify(pred_empty: bool, ref_empty: bool) -> Flag:
    """The flag for a label whose prediction / reference masks are (not) empty."""
    if pred_empty and ref_empty:
        return "both_empty"
    if pred_empty:
        return "missed"
    if ref_empty:
        return "false_positive"
    return "ok"


def fixed_values(flag: Flag, diagonal_mm: float) -> dict[str, float]:
    """Scores and distances the policy fixes for ``flag`` (every flag but ``ok``).

    Args:
        flag: the label's flag.
        diagonal_mm: the reference grid's field-of-view diagonal (the worst-case distance).
    """
    if flag == "ok":
        raise ValueError("'ok' results are measured, not fixed by the policy")
    if flag == "both_empty":
        return {**dict.fromkeys(SCORE_METRICS, 1.0), **dict.fromkeys(DISTANCE_METRICS, 0.0)}
    return {**dict.fromkeys(SCORE_METRICS, 0.0), **dict.fromkeys(DISTANCE_METRICS, float(diagonal_mm))}
