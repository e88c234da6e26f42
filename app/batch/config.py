"""What one batch run is asked to do: a small frozen dataclass, checked when built.

``unetseg infer`` and ``unetseg demo`` build a :class:`BatchConfig` from their arguments and hand it to
:func:`app.batch.runner.run_batch`; nothing else configures a run. It is the one options object of a run: it is
validated once, here, and what the report records is derived from it, not written out again:
:meth:`BatchConfig.options` (``report.json``'s ``provenance.options``) and :meth:`BatchConfig.canonical_command`
(the reproducible ``unetseg infer`` command line), both from the fields and their ``flag`` metadata. Adding an
option means a field (with its flag and check) and the code that uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

from app.batch.shard import Shard
from app.errors import InputError
from app.inference.runtime.select import BACKEND_CHOICES
from app.loading.options import DEFAULT_MAX_BYTES, ReadOptions

Format = Literal["nifti", "seg"]
Cluster = Literal["local", "ray"]
SegType = Literal["BINARY", "LABELMAP"]

FORMATS: tuple[Format, ...] = ("nifti", "seg")
#: ``modality`` values with a special meaning
MODALITY_FROM_BUNDLE = "auto"
ANY_MODALITY = "any"


def _flag(word: str, *, always: bool = False, text: Callable[[Any], str] = str) -> dict[str, Any]:
    """Field metadata: the ``unetseg infer`` option ``word`` that sets the field. A bool field's word is the one
    that flips its default (``--resume``, ``--no-preview``); ``always``: written even at its default value;
    ``text``: the value as written on the command line."""
    return {"flag": word, "always": always, "text": text}


def _read_words(read: ReadOptions) -> list[str]:
    """``--max-input-gib`` and ``--strict-orientation`` for a :class:`ReadOptions` that is not the default."""
    words = []
    if read.max_bytes != DEFAULT_MAX_BYTES:
        words += ["--max-input-gib", f"{read.max_bytes / 2**30:g}"]
    if read.strict_orientation:
        words.append("--strict-orientation")
    return words


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
        command_line: the command to record in the report; empty: :meth:`canonical_command`.
    """

    inputs: tuple[Path, ...]
    bundle: Path
    out: Path
    device: str = field(default="auto", metadata=_flag("--device", always=True))
    formats: frozenset[Format] = field(
        default=frozenset(FORMATS),
        metadata=_flag("--formats", always=True, text=lambda v: ",".join(sorted(v))),
    )
    seg_type: SegType = field(default="BINARY", metadata=_flag("--seg-type", always=True, text=str.lower))
    modality: str = field(default=MODALITY_FROM_BUNDLE, metadata=_flag("--modality", always=True))
    backend: str = field(default="auto", metadata=_flag("--backend", always=True))
    cluster: Cluster = field(default="local", metadata=_flag("--cluster"))
    num_threads: int | None = field(default=None, metadata=_flag("--threads"))
    skip_empty: bool = field(default=True, metadata=_flag("--no-skip-empty"))
    resample_float32: bool = field(default=True, metadata=_flag("--float64-resampling"))
    series_filters: tuple[str, ...] = field(default=(), metadata=_flag("--series"))
    overlap: float | None = field(default=None, metadata=_flag("--overlap"))
    sw_batch_size: int | None = field(default=None, metadata=_flag("--sw-batch-size"))
    ref: Path | None = field(default=None, metadata=_flag("--ref"))
    tolerance_mm: float = 1.0
    shard: Shard | None = field(default=None, metadata=_flag("--shard"))
    address: str | None = field(default=None, metadata=_flag("--address"))
    workers: int | None = field(default=None, metadata=_flag("--workers"))
    threads_per_worker: int | None = field(default=None, metadata=_flag("--threads-per-worker"))
    read: ReadOptions = field(default_factory=ReadOptions)
    preview: bool = field(default=True, metadata=_flag("--no-preview"))
    resume: bool = field(default=False, metadata=_flag("--resume"))
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

    def options(self) -> dict[str, Any]:
        """Every setting of the run by field name (``read`` as its fields; paths, shards as text), for the report."""
        options: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "command_line":
                continue
            value = getattr(self, f.name)
            if is_dataclass(value) and not isinstance(value, type):
                value = asdict(value)
            elif isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, tuple):
                value = [str(v) for v in value]
            elif isinstance(value, Path | Shard):
                value = str(value)
            options[f.name] = value
        return options

    def canonical_command(self) -> tuple[str, ...]:
        """The ``unetseg infer`` command that runs this configuration: INPUT, bundle and OUT, the options marked
        ``always``, then every option that is not at its default (field order), the readers' options last."""
        words = [
            "unetseg",
            "infer",
            *map(str, self.inputs),
            "--bundle",
            str(self.bundle),
            "--out",
            str(self.out),
        ]
        for f in fields(self):
            if "flag" not in f.metadata:
                continue
            value, flag = getattr(self, f.name), f.metadata["flag"]
            if isinstance(value, bool):
                words += [flag] if value != f.default else []
            elif isinstance(value, tuple):
                for item in value:
                    words += [flag, f.metadata["text"](item)]
            elif value is not None and (f.metadata["always"] or value != f.default):
                words += [flag, f.metadata["text"](value)]
        return tuple(words + _read_words(self.read))

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
