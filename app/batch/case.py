"""One case of a batch: load -> segment -> write NIfTI (and DICOM SEG) -> write ``case.json`` last.

Contract of :func:`run_case`: fills the given :class:`~app.batch.records.CaseRecord` (timings, outputs, SEG
UIDs, the loader's warnings, status ``"ok"``) or raises; it never catches (the batch's one error boundary is
:func:`app.batch.isolation.run_isolated`). The input is checked against the bundle
(:func:`app.inference.input_check.check_input`) after loading and before any engine starts. Outputs go to
``OUT/<case_id>/``: ``<case_id>_seg.nii.gz`` (label map in RAS, :func:`app.writing.nifti.write_nifti`; for a
PNG/TIFF input, the ``nifti`` format is a label picture of the input's size and kind instead,
``<case_id>_seg.png`` or ``.tif``, a stack as a multi-page TIFF, label values times the bundle's
``picture_scale`` as its own writer stores them, e.g. 0/255 for the EM bundle) and, for
DICOM cases, ``<case_id>_seg.dcm`` (:func:`app.writing.dicom_seg.write_dicom_seg`, labels in the source's LPS
grid with its :class:`~app.volume.DicomSource`, segments from the bundle's ``channel_def``). Then the prediction is
described for a person (:func:`app.batch.case_qa.describe_case`: ``statistics.json`` with plausibility flags,
``preview.png`` unless ``config.preview`` is off; an input far from the bundle's training images adds a warning
to the record first). With ``--ref``, the label map the case holds is scored against the case's reference in
memory (:func:`app.batch.scoring.score_prediction`, :attr:`~app.batch.records.CaseRecord.score`). Every file is
written atomically, and ``case.json`` (:mod:`app.batch.manifest`) after all of them.

SEG UIDs are deterministic (:func:`seg_uids`): the same source series, model, settings and unetseg version
give the same SEG Series/SOP Instance UIDs, so a re-run replaces an object instead of adding a near copy.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from app import __version__
from app.batch.case_qa import describe_case, input_warnings
from app.batch.config import BatchConfig
from app.batch.manifest import forget, write_manifest
from app.batch.records import CaseRecord, OutputFile, SegRecord
from app.errors import InputError, OutputError
from app.inference.bundle import LoadedBundle
from app.inference.bundle_info import BundleInfo
from app.inference.input_check import check_input, check_resampled_size, target_spacing
from app.loading import Case
from app.run_layout import DICOM_SEG_EXTENSION, SEG_SUFFIX
from app.volume import Volume

logger = logging.getLogger(__name__)

#: SeriesDescription / algorithm name fields are LO: at most 64 characters
_LO = 64


def case_formats(kind: str, formats: frozenset[str]) -> tuple[str, ...]:
    """The outputs a case of ``kind`` gets: NIfTI for every case, SEG only for DICOM cases."""
    return tuple(f for f in ("nifti", "seg") if f in formats and (f != "seg" or kind == "dicom"))


def fingerprint(info: BundleInfo, kind: str, config: BatchConfig) -> dict[str, Any]:
    """The settings a complete case must have been made with (see :mod:`app.batch.manifest`)."""
    formats = case_formats(kind, config.formats)
    return {
        "weights_sha256": info.weights_sha256,
        "bundle_version": info.version,
        "unetseg": __version__,
        "formats": list(formats),
        "seg_type": config.seg_type if "seg" in formats else None,
    }


def completion_key(info: BundleInfo, case: Case, config: BatchConfig) -> dict[str, Any]:
    """What ``case.json`` records and ``--resume`` compares (:mod:`app.batch.manifest`): the settings
    (:func:`fingerprint`) and the input's identity (:meth:`Case.identity`)."""
    return fingerprint(info, case.kind, config) | case.identity()


def seg_uids(source_series_uid: str, settings: Mapping[str, Any]) -> tuple[str, str]:
    """``(series UID, SOP instance UID)`` of the SEG: ``2.25.<uuid5>`` of the source series and ``settings``."""
    key = "|".join([source_series_uid, *(f"{k}={settings[k]}" for k in sorted(settings))])
    series = uuid.uuid5(uuid.NAMESPACE_OID, f"unetseg-seg-series/{key}")
    instance = uuid.uuid5(uuid.NAMESPACE_OID, f"unetseg-seg-instance/{key}")
    return f"2.25.{series.int}", f"2.25.{instance.int}"


def run_case(
    case: Case,
    record: CaseRecord,
    bundle: LoadedBundle,
    config: BatchConfig,
    workdir: Path,
    progress: Callable[[int, int], None] | None = None,
    reference: Path | None = None,
) -> CaseRecord:
    """Segment one case and write its outputs (contract in the module docstring); ``progress(done, total)``
    hears of the sliding window's windows (:func:`app.inference.predict.segment`); with a ``reference``
    label file (``--ref``), the label map is scored against it in memory (:func:`app.batch.scoring.score_prediction`).

    Raises:
        InputError: the case cannot be read, or no requested output applies to it (SEG only for DICOM).
        BundleError, OutputError: see :func:`app.inference.predict.segment` and the writers.
    """
    from app.inference.predict import segment
    from app.writing.nifti import write_nifti

    case_dir = Path(config.out) / case.case_id
    formats = case_formats(case.kind, config.formats)
    if not formats:
        raise InputError(
            case.source,
            "only DICOM SEG output was asked for, but this input is not DICOM; add nifti to --formats",
        )
    forget(case_dir)
    record.outputs.clear()
    record.warnings.clear()
    record.score = None

    started = time.perf_counter()
    volume = case.load(config.read)
    record.timings_s["load"] = time.perf_counter() - started
    record.warnings.extend(volume.warnings)
    check_input(
        bundle.info, volume, case.kind, required_modality=config.required_modality(bundle.info.modality)
    )
    check_resampled_size(
        volume, target_spacing(bundle.preprocessing), bundle.info.name, config.read.max_bytes
    )
    for warning in input_warnings(bundle.info, volume, volume.modality):
        logger.info("case %s: %s", case.case_id, warning)  # the record carries it; the console prints it once
        record.warnings.append(warning)

    started = time.perf_counter()
    labels = segment(bundle, volume, workdir, name=case.case_id, progress=progress)
    record.timings_s["inference"] = time.perf_counter() - started

    started = time.perf_counter()
    stored = _as_stored(case, labels, bundle.info)
    if "nifti" in formats and case.kind == "picture":
        path = _write_label_picture(case, stored, case_dir)
        record.outputs.append(OutputFile.of("picture", path))
    elif "nifti" in formats:
        path = write_nifti(
            labels,
            case_dir / f"{case.case_id}{SEG_SUFFIX}.nii.gz",
            like=case.source if case.kind == "nifti" else None,
        )
        record.outputs.append(OutputFile.of("nifti", path))
    record.status, record.reason = "ok", ""
    if "seg" in formats:
        # Outputs are independent: a SEG the source cannot support (e.g. its UIDs were blanked) must not
        # discard the segmentation already written as NIfTI. The case is "partial" and says why.
        try:
            record.seg = _write_seg(case, labels, bundle.info, config, case_dir)
            record.outputs.append(OutputFile.of("seg", Path(record.seg.path)))
        except (InputError, OutputError) as exc:
            if not record.outputs:
                raise
            why = " ".join(str(exc).split())  # one line on the console and in report.csv
            record.status, record.reason = "partial", f"DICOM SEG not written: {type(exc).__name__}: {why}"
            # INFO, not WARNING: the reason is in the record, which the batch's observer shows (the console
            # printed it twice, once from this log line and once with the case's line)
            logger.info("case %s: %s", case.case_id, record.reason)
    record.timings_s["write"] = time.perf_counter() - started

    if reference is not None:
        from app.batch.scoring import score_prediction
        from app.bundle_metadata import scored_labels

        started = time.perf_counter()
        scored = scored_labels(bundle.info.labels, bundle.info.picture_scale)
        record.score = score_prediction(case.case_id, stored, reference, scored, config.tolerance_mm)
        record.timings_s["score"] = time.perf_counter() - started

    started = time.perf_counter()
    record.statistics, written = describe_case(
        case.case_id,
        volume,
        labels,
        bundle.info,
        case_dir,
        modality=volume.modality or bundle.info.modality,
        picture=case.kind == "picture",
        preview=config.preview,
    )
    record.outputs.extend(written)
    record.timings_s["qa"] = time.perf_counter() - started
    write_manifest(case_dir, record, completion_key(bundle.info, case, config))
    return record


def _as_stored(case: Case, labels: Volume, info: BundleInfo) -> Volume:
    """The label map as the case's output file stores it: a picture input's labels times the bundle's
    ``picture_scale`` (e.g. 0/255 for the EM bundle), any other case's as they are."""
    if case.kind != "picture":
        return labels
    return labels.with_array(labels.array.astype(np.int64) * (info.picture_scale or 1))


def _write_label_picture(case: Case, stored: Volume, case_dir: Path) -> Path:
    from app.writing.picture import write_picture

    suffix = ".png" if stored.ndim == 2 and case.source.suffix.lower() == ".png" else ".tif"
    return write_picture(stored, case_dir / f"{case.case_id}{SEG_SUFFIX}{suffix}")


def _write_seg(
    case: Case, labels: Volume, info: BundleInfo, config: BatchConfig, case_dir: Path
) -> SegRecord:
    from app.writing.dicom_seg import write_dicom_seg

    if labels.dicom is None:
        raise OutputError(case.source, "no DICOM source recorded for this volume; a SEG cannot reference it")
    source_series = labels.dicom.series_instance_uid or case.case_id
    series_uid, sop_uid = seg_uids(source_series, fingerprint(info, case.kind, config))
    written = write_dicom_seg(
        labels,
        labels.dicom,  # the source series as the DICOM reader recorded it
        info.labels,
        case_dir / f"{case.case_id}{SEG_SUFFIX}{DICOM_SEG_EXTENSION}",
        segmentation_type=config.seg_type,
        algorithm_name=info.name[:_LO],
        algorithm_version=info.version[:_LO],
        label_context=info.label_context,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
    )
    return SegRecord.of(written)
