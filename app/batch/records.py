"""The per-case record of a batch run: what went in, what came out, how long it took, and why it failed.

A :class:`CaseRecord` is created from a discovered :class:`~app.loading.Case` before anything is read (so a
case that fails to load still has its identity in the report), filled in while the case runs, and turned into
plain JSON by :meth:`CaseRecord.to_dict` for ``case.json`` and ``report.json``. It holds no patient name or ID:
only paths, UIDs, SeriesNumber, SeriesDescription and Modality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from app.batch.tracing import relative_source
from app.checksums import sha256_file
from app.evaluation.scoring import CaseScore
from app.evaluation.statistics import CaseStatistics
from app.loading import Case

if TYPE_CHECKING:
    from app.writing.dicom_seg import WrittenSeg

Status = Literal["pending", "ok", "partial", "failed", "skipped"]
#: why a case failed: ``"refused"`` (an input, bundle or output problem a user can fix; the reason says what) or
#: ``"internal"`` (an unexpected exception: a bug, or the machine ran out of memory; the traceback is in the run log)
Failure = Literal["", "refused", "internal"]


@dataclass(frozen=True)
class OutputFile:
    """One written file: ``kind`` (``"nifti"``/``"picture"``/``"seg"``), path, size in bytes and SHA-256."""

    kind: str
    path: str
    bytes: int
    sha256: str

    @classmethod
    def of(cls, kind: str, path: Path) -> OutputFile:
        return cls(kind=kind, path=str(path), bytes=path.stat().st_size, sha256=sha256_file(path))


@dataclass(frozen=True)
class SeriesIdentity:
    """Which DICOM series a case is: its UIDs, SeriesNumber, SeriesDescription and Modality (no patient data)."""

    study_instance_uid: str
    series_instance_uid: str
    series_number: int | None = None
    series_description: str = ""
    modality: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SegRecord:
    """The DICOM SEG a case wrote: its file, new UIDs, SeriesNumber, type, frames, segments (number -> label, keys
    as strings, as JSON has them) and the series it references."""

    path: str
    series_instance_uid: str
    sop_instance_uid: str
    series_number: int
    segmentation_type: str
    number_of_frames: int
    segments: dict[str, str]
    source_series_instance_uid: str

    @classmethod
    def of(cls, written: WrittenSeg) -> SegRecord:
        return cls(
            path=str(written.path),
            series_instance_uid=written.series_instance_uid,
            sop_instance_uid=written.sop_instance_uid,
            series_number=written.series_number,
            segmentation_type=written.segmentation_type,
            number_of_frames=written.number_of_frames,
            segments={str(k): v for k, v in written.segments.items()},
            source_series_instance_uid=written.source_series_instance_uid,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CaseRecord:
    """What happened to one case (mutable while the case runs; see the module docstring).

    Attributes:
        case_id: the file-name-safe id (:mod:`app.loading.cases`).
        kind: ``"dicom"``, ``"nifti"``, ``"nrrd"`` or ``"picture"``.
        input: the file, or the folder holding the series' files.
        input_files: the series' files (DICOM), or the one file.
        series: for DICOM, the chosen series: study/series UIDs, SeriesNumber, SeriesDescription, Modality.
        status: ``"ok"``, ``"partial"`` (segmented and some outputs written, but a requested output was
            refused, e.g. a DICOM SEG for a source without UIDs; ``reason`` says which and why),
            ``"failed"``, ``"skipped"`` (complete from an earlier run) or ``"pending"``.
        reason: why it failed or was skipped; empty when ok.
        outputs: files written for this case (for a skipped case: those of the earlier run, verified).
        seg: the SEG's new UIDs and segments (DICOM cases with SEG output).
        timings_s: seconds spent in ``load``, ``inference`` and ``write``.
        failure: for a failed case, ``"refused"`` or ``"internal"`` (see :data:`Failure`); else empty.
        warnings: things the user should know about an otherwise usable input (e.g. a NIfTI whose qform and
            sform disagree, or an input far from the bundle's training images), in the words of the stage that
            noticed them.
        statistics: per-label statistics of the prediction and its plausibility flags
            (:mod:`app.evaluation.statistics`, ``statistics.json``); ``None`` until a case is segmented.
        source: ``input`` relative to the INPUT it was found under (:mod:`app.batch.tracing`), the name a user
            recognises behind an opaque case id; empty when the record was made without the inputs.
        score: with ``--ref``, the case's prediction scored against its reference while the case ran
            (:mod:`app.batch.scoring`); kept in memory for the run's evaluation reports, not written to
            ``case.json`` (``report.json`` carries the run's scores).
    """

    case_id: str
    kind: str
    input: str
    input_files: list[str]
    series: SeriesIdentity | None = None
    status: Status = "pending"
    reason: str = ""
    outputs: list[OutputFile] = field(default_factory=list)
    seg: SegRecord | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    failure: Failure = ""
    warnings: list[str] = field(default_factory=list)
    statistics: CaseStatistics | None = None
    source: str = ""
    score: CaseScore | None = None

    @property
    def flags(self) -> list[str]:
        """The plausibility flags' sentences (empty without statistics)."""
        return [f.message for f in self.statistics.flags] if self.statistics is not None else []

    @classmethod
    def of(cls, case: Case, inputs: Sequence[str | Path] = ()) -> CaseRecord:
        """A pending record with the case's identity (headers only; nothing is loaded); ``inputs``: the run's
        INPUT paths, for ``source``."""
        source = relative_source(case.source, inputs) if inputs else ""
        if case.series is not None:
            s = case.series
            files = [str(h.path) for h in s.instances]
            series = SeriesIdentity(
                study_instance_uid=s.study_instance_uid,
                series_instance_uid=s.series_instance_uid,
                series_number=s.series_number,
                series_description=s.series_description,
                modality=s.modality,
            )
            return cls(case.case_id, case.kind, str(case.source), files, series, source=source)
        return cls(case.case_id, case.kind, str(case.source), [str(case.source)], source=source)

    def output(self, kind: str) -> OutputFile | None:
        return next((o for o in self.outputs if o.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data, field by field (``dataclasses.asdict`` deep-copies every input path, which
        made a 100,000-case report take 20 s longer to build)."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "score"}
        data["input_files"] = list(self.input_files)
        data["series"] = self.series.to_dict() if self.series is not None else None
        data["outputs"] = [asdict(o) for o in self.outputs]
        data["seg"] = self.seg.to_dict() if self.seg is not None else None
        data["timings_s"] = {k: round(float(v), 3) for k, v in self.timings_s.items()}
        data["warnings"] = list(self.warnings)
        data["statistics"] = self.statistics.to_dict() if self.statistics is not None else None
        return data

    def summary_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` with the count of input files instead of their list (``report.json`` and the run
        journal: a DICOM study lists hundreds of files, which ``case.json`` keeps; a run report of 100,000
        studies that repeated them would be gigabytes)."""
        data = self.to_dict()
        data["n_input_files"] = len(data.pop("input_files"))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseRecord:
        """The inverse of :meth:`to_dict` (and of :meth:`summary_dict`, with an empty ``input_files``).

        Raises:
            KeyError, TypeError: ``data`` is not a record written by :meth:`to_dict`.
        """
        values = dict(data)
        values.pop("n_input_files", None)
        values.setdefault("input_files", [])
        values["outputs"] = [OutputFile(**o) for o in values.get("outputs") or []]
        series = values.get("series")
        values["series"] = SeriesIdentity(**series) if series is not None else None
        seg = values.get("seg")
        values["seg"] = SegRecord(**seg) if seg is not None else None
        statistics = values.get("statistics")
        values["statistics"] = CaseStatistics.from_dict(statistics) if statistics is not None else None
        return cls(**values)
