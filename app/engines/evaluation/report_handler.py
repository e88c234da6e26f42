"""An Ignite handler that scores an evaluator's predictions with unetseg's evaluation package.

It makes the bundle's ``evaluate.json`` produce the same ``metrics.csv`` / ``summary.json`` / ``report.html`` as
``unetseg evaluate`` and ``unetseg infer --ref``, by the same path: each case scored as a
:class:`~app.evaluation.scoring.CaseScore` (:func:`app.evaluation.scoring.score_case`), the run assembled by
:meth:`~app.evaluation.run.EvaluationRun.from_scores` and written by
:func:`~app.reporting.evaluation_reports.write_evaluation_reports`; the worst cases are drawn from the voxels the
evaluator held.

Contract: after the evaluator's postprocessing, each decollated output item holds ``pred_key`` and
``label_key`` as label maps or one-hot/probability channels ``(C, *spatial)``, MetaTensors whose ``affine`` maps
voxels to RAS mm (distances are therefore in mm on whatever grid the postprocessing leaves them). The case id is
the stem of ``meta["filename_or_obj"]`` of the prediction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ignite.engine import Engine, Events

from app.evaluation.batch import label_maps
from app.evaluation.labels import labels_from_bundle
from app.evaluation.result import CaseVolumes
from app.evaluation.run import EvaluationRun
from app.evaluation.scoring import CaseScore, score_case
from app.reporting.evaluation_reports import write_evaluation_reports
from app.volume import Volume

logger = logging.getLogger(__name__)


class SegmentationReportHandler:
    """Collect per-case results during an evaluator run; write the reports when it completes.

    Args:
        output_dir: where ``metrics.csv``, ``summary.json`` and ``report.html`` go.
        bundle_root: the bundle whose ``channel_def`` names the labels (entries named "background" skipped).
        labels: explicit ``{value: name}`` instead of ``bundle_root``.
        tolerance_mm: normalised surface Dice tolerance.
        worst: how many of the worst cases get overlay pictures.
        spatial_dims: 2 or 3.
        pred_key, label_key, image_key: keys of the evaluator's output items.
    """

    def __init__(
        self,
        output_dir: str | Path,
        bundle_root: str | Path | None = None,
        labels: Mapping[int, str] | None = None,
        tolerance_mm: float = 1.0,
        worst: int = 10,
        spatial_dims: int = 3,
        pred_key: str = "pred",
        label_key: str = "label",
        image_key: str = "image",
    ) -> None:
        if labels:
            self.labels = {int(k): v for k, v in labels.items()}
        elif bundle_root is not None:
            self.labels = labels_from_bundle(bundle_root)
        else:
            raise ValueError("give either labels or bundle_root")
        self.output_dir = Path(output_dir)
        self.tolerance_mm = tolerance_mm
        self.worst = worst
        self.spatial_dims = spatial_dims
        self.keys = (pred_key, label_key, image_key)
        self.scores: list[CaseScore] = []
        self.volumes: dict[str, CaseVolumes] = {}
        self.references: list[Path] = []
        self._started = 0.0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def _reset(self, engine: Engine) -> None:
        self.scores, self.volumes, self.references, self._started = [], {}, [], time.perf_counter()

    def _collect(self, engine: Engine) -> None:
        pred_key, label_key, image_key = self.keys
        output: Any = engine.state.output
        items = output if isinstance(output, list) else [output]
        for item in items:
            pred = item[pred_key]
            case_id = Path(str(pred.meta.get("filename_or_obj", f"case_{len(self.volumes)}"))).name
            case_id = case_id.removesuffix(".gz").removesuffix(".nii")
            affine = np.asarray(pred.affine.detach().cpu(), dtype=np.float64)
            pred_map = Volume(self._label_map(pred, case_id), affine, source=case_id)
            ref_map = Volume(self._label_map(item[label_key], case_id), affine, source=case_id)
            reference = getattr(item[label_key], "meta", {}).get("filename_or_obj")
            if reference:  # its file decides the units (a PNG label: pixels)
                self.references.append(Path(str(reference)))
            self.scores.append(
                score_case(case_id, pred_map, ref_map, self.labels, tolerance_mm=self.tolerance_mm)
            )
            image = item.get(image_key)
            image_volume = None
            if image is not None and tuple(image.shape[1:]) == tuple(pred.shape[1:]):
                image_volume = Volume(
                    image.detach().cpu().numpy()[0].astype(np.float32), affine, source=case_id
                )
            self.volumes[case_id] = CaseVolumes(ref=ref_map, pred=pred_map, image=image_volume)

    def _label_map(self, channels: Any, case_id: str) -> np.ndarray:
        """One item's label map from ``(C, *spatial)`` (:func:`app.evaluation.batch.label_maps`), whole numbers only."""
        array = label_maps(channels[None], self.spatial_dims, f"case {case_id}")[0]
        if not np.array_equal(array, np.rint(array)):
            raise ValueError(f"case {case_id}: the label map holds non-integer values")
        return array.astype(np.int32)

    def _write(self, engine: Engine) -> None:
        run = EvaluationRun.from_scores(
            self.scores,
            labels=self.labels,
            tolerance_mm=self.tolerance_mm,
            seconds=time.perf_counter() - self._started,
            volumes=self.volumes,
            references=self.references,
        )
        paths = write_evaluation_reports(
            run,
            self.output_dir,
            inputs={"engine": type(engine).__name__, "cases": sorted(self.volumes)},
            worst=self.worst,
        )
        if run.summary.unlisted:
            logger.warning("%s (listed in %s)", run.summary.unlisted.line(), paths.summary_json)
        logger.info(
            "evaluation reports written: %s, %s, %s", paths.metrics_csv, paths.summary_json, paths.report_html
        )
