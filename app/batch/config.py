"""What one batch run is asked to do: a small frozen dataclass, checked when built.

``unetseg infer`` and ``unetseg demo`` build a :class:`BatchConfig` from their arguments and hand it to
:func:`app.batch.runner.run_batch`; nothing else configures a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app.batch.shard import Shard
from app.errors import InputError
from app.inference.runtime.select import BACKEND_CHOICES
from app.loading.options import ReadOptions

Format = Literal["nifti", "seg"]
Cluster = Literal["local", "ray"]
SegType = Literal["BINARY", "LABELMAP"]

FORMATS: tuple[Format, ...] = ("nifti", "seg")
#: ``modality`` values with a special meaning
MODALITY_FROM_BUNDLE = "auto"
ANY_MODALITY = "any"


@dataclass(frozen=True)
class BatchConfig:
    """One batch run.

    Attributes:
        inputs: files and folders (NIfTI/NRRD files, folders of them, DICOM series folders or trees).
        bundle: the MONAI bundle folder.
        out: output folder: ``OUT/<case_id>/`` per case, ``OUT/report.json`` and ``OUT/report.csv``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``).
        formats: outputs to write: ``"nifti"`` (every case) and ``"seg"`` (DICOM SEG, DICOM cases only).
        seg_type: ``"BINARY"`` or ``"LABELMAP"`` SEG.
        overlap, sw_batch_size: sliding-window settings instead of the bundle's (``None``: the bundle's, or the
            backend's measured best window batch).
        backend: network runtime: ``"auto"`` (fastest installed that agrees with torch), ``"torch"``,
            ``"onnxruntime"`` or ``"openvino"`` (see :mod:`app.inference.runtime`).
        skip_empty: do not run the network on windows outside the body (:mod:`app.engines.skip_empty`).
        resample_float32: resample in float32 where the bundle says float64
            (:mod:`app.inference.resample_precision`).
        num_threads: CPU threads for the network (``None``: all this process may use).
        series_filters: ``Key=Value`` / ``Key~Regex`` DICOM series rules (all must match).
        modality: required DICOM Modality; ``"auto"``: the bundle's input modality; ``"any"``: no rule.
        resume: skip cases whose ``case.json`` shows complete outputs (see :mod:`app.batch.manifest`).
        ref: folder of reference labels named by case id, for scoring after inference; ``None``: no scoring.
        tolerance_mm: NSD tolerance for the scoring.
        shard: run only this shard of the case list (:mod:`app.batch.shard`); ``None``: every case.
        cluster: ``"local"`` (this process) or ``"ray"`` (Ray actors, :mod:`app.batch.cluster`).
        address: with ``cluster="ray"``, the cluster to join (``"auto"``, ``HOST:PORT``, ``ray://HOST:PORT``);
            ``None``: start a local Ray runtime for the run and stop it after.
        workers: with ``cluster="ray"``, the number of worker actors (``None``: as many as the cluster's CPUs
            allow at ``threads_per_worker`` each).
        threads_per_worker: with ``cluster="ray"``, CPU threads (and Ray CPUs) per worker (``None``: 1).
        preview: write ``OUT/<case_id>/preview.png`` per case (:mod:`app.reporting.preview`); ``--no-preview``
            turns it off (statistics and flags are always computed).
        read: what every reader is told: the size limit and the NIfTI orientation policy
            (:class:`~app.loading.options.ReadOptions`).
        command_line: the command as typed, for the report.
    """

    inputs: tuple[Path, ...]
    bundle: Path
    out: Path
    device: str = "auto"
    formats: frozenset[Format] = frozenset(FORMATS)
    seg_type: SegType = "BINARY"
    overlap: float | None = None
    sw_batch_size: int | None = None
    backend: str = "auto"
    skip_empty: bool = True
    resample_float32: bool = True
    num_threads: int | None = None
    series_filters: tuple[str, ...] = ()
    modality: str = MODALITY_FROM_BUNDLE
    resume: bool = False
    ref: Path | None = None
    tolerance_mm: float = 1.0
    shard: Shard | None = None
    cluster: Cluster = "local"
    address: str | None = None
    workers: int | None = None
    threads_per_worker: int | None = None
    preview: bool = True
    read: ReadOptions = field(default_factory=ReadOptions)
    command_line: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.inputs:
            raise InputError(None, "no input given; name files or folders to segment")
        object.__setattr__(self, "inputs", tuple(Path(p) for p in self.inputs))
        object.__setattr__(self, "formats", frozenset(self.formats))
        if not self.formats or not self.formats <= set(FORMATS):
            raise InputError(None, f"formats must be a non-empty subset of {', '.join(FORMATS)}")
        seg_type = str(self.seg_type).upper()
        if seg_type not in ("BINARY", "LABELMAP"):
            raise InputError(None, f"seg type must be binary or labelmap, got {self.seg_type!r}")
        object.__setattr__(self, "seg_type", seg_type)
        if self.overlap is not None and not 0 <= self.overlap < 1:
            raise InputError(None, f"overlap must be in [0, 1), got {self.overlap}")
        if self.sw_batch_size is not None and self.sw_batch_size < 1:
            raise InputError(None, f"sw batch size must be >= 1, got {self.sw_batch_size}")
        if self.backend not in BACKEND_CHOICES:
            raise InputError(
                None, f"backend must be one of {', '.join(BACKEND_CHOICES)}, got {self.backend!r}"
            )
        if self.num_threads is not None and self.num_threads < 1:
            raise InputError(None, f"threads must be >= 1, got {self.num_threads}")
        if self.tolerance_mm < 0:
            raise InputError(None, f"tolerance must be >= 0 mm, got {self.tolerance_mm}")
        if self.cluster not in ("local", "ray"):
            raise InputError(None, f"cluster must be local or ray, got {self.cluster!r}")
        if self.cluster != "ray" and (self.address or self.workers or self.threads_per_worker):
            raise InputError(None, "--address, --workers and --threads-per-worker need --cluster ray")
        for name in ("workers", "threads_per_worker"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(None, f"{name.replace('_', '-')} must be >= 1, got {value}")
        if self.ref is not None and self.shard is not None:
            raise InputError(
                self.ref,
                "--ref scores a whole run; with --shard, join the shards with `unetseg report OUT`, then score "
                "with `unetseg evaluate`",
            )
        if self.ref is not None and not Path(self.ref).is_dir():
            raise InputError(self.ref, "reference folder not found")

    @property
    def report_stem(self) -> str:
        """``report`` (or ``report-shard-K-of-N``): the run report's file name without suffix."""
        return "report" + (self.shard.suffix if self.shard else "")

    @property
    def journal_name(self) -> str:
        """``journal.jsonl`` (or ``journal-shard-K-of-N.jsonl``)."""
        return "journal" + (self.shard.suffix if self.shard else "") + ".jsonl"

    def required_modality(self, bundle_modality: str | None) -> str | None:
        """The Modality rule for discovery: the bundle's (``"auto"``), none (``"any"``) or the one given."""
        value = self.modality.strip()
        if value.lower() == MODALITY_FROM_BUNDLE:
            return bundle_modality
        if value.lower() == ANY_MODALITY or not value:
            return None
        return value.upper()


def parse_formats(text: str | Sequence[str]) -> frozenset[Format]:
    """``"nifti,seg"`` (or a list of names) -> ``{"nifti", "seg"}``.

    Raises:
        InputError: an unknown or empty format list.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names = {item.strip().lower() for item in items if item.strip()}
    unknown = sorted(names - set(FORMATS))
    if unknown or not names:
        raise InputError(
            None, f"unknown output format(s) {unknown or '(none)'}; choose from {', '.join(FORMATS)}"
        )
    return frozenset(names)  # type: ignore[arg-type]
