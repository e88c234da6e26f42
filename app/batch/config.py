"""What one batch run is asked to do: a small frozen dataclass, checked when built.

``unetseg infer`` and ``unetseg demo`` build a :class:`BatchConfig` from their arguments and hand it to
:func:`app.batch.runner.run_batch`; nothing else configures a run. It is the one options object of a run: it is
validated once, here, and what the report records is derived from it, not written out again:
:meth:`BatchConfig.options` (``report.json``'s ``provenance.options``) and :meth:`BatchConfig.canonical_command`
(the reproducible ``unetseg infer`` command line), both from the fields and their :class:`Flag` metadata, from
which ``unetseg infer``'s parser is also built (:func:`config_flags`) and its values read back
(:meth:`BatchConfig.from_flags`). Adding an option means a field (with its flag and check) and the code that
uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import Field, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

from app.batch.shard import Shard
from app.errors import InputError
from app.inference.options import InferenceOptions
from app.inference.runtime.select import BACKEND_CHOICES
from app.loading.options import DEFAULT_MAX_BYTES, ReadOptions

Format = Literal["nifti", "seg"]
Cluster = Literal["local", "ray"]
SegType = Literal["BINARY", "LABELMAP"]

FORMATS: tuple[Format, ...] = ("nifti", "seg")
#: ``modality`` values with a special meaning
MODALITY_FROM_BUNDLE = "auto"
ANY_MODALITY = "any"


@dataclass(frozen=True)
class Flag:
    """How a :class:`BatchConfig` field is set on the ``unetseg infer`` command line: the parser is built from these
    (:func:`config_flags`, ``app.cli.infer``), the parsed values become the configuration
    (:meth:`BatchConfig.from_flags`) and the configuration becomes its command line again
    (:meth:`BatchConfig.canonical_command`).

    Attributes:
        word: the option (a bool field's word is the one that flips its default: ``--resume``, ``--no-preview``).
        help: its ``--help`` text.
        metavar: the value's name in ``--help``.
        type: the parser's conversion of the word's value (a malformed number is a usage error).
        parse: then the field's value from the parser's (may raise :class:`~app.errors.InputError`, which names
            the option); ``None``: as the parser gives it.
        text: the field's value as written on the command line.
        choices: the values the parser accepts.
        always: written in the canonical command even at its default value.
        group: the ``--help`` section; ``None``: the command's own options.
    """

    word: str
    help: str
    metavar: str | None = None
    type: Callable[[str], Any] = str
    parse: Callable[[Any], Any] | None = None
    text: Callable[[Any], str] = str
    choices: tuple[str, ...] | None = None
    always: bool = False
    group: str | None = None


def _flag(word: str, help: str, **options: Any) -> dict[str, Flag]:
    """Field metadata: the :class:`Flag` that sets the field."""
    return {"flag": Flag(word, help, **options)}


_SCALE_OUT = "scale-out (docs/scale_out.md)"


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
        skip_empty: do not run the network on windows outside the body (:mod:`app.engines.inferers.skip_empty`).
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
    device: str = field(
        default="auto",
        metadata=_flag(
            "--device", "auto (CUDA when available), cpu, cuda or cuda:N (default auto)", always=True
        ),
    )
    formats: frozenset[Format] = field(
        default=frozenset(FORMATS),
        metadata=_flag(
            "--formats",
            "outputs: nifti, seg or nifti,seg (default; SEG for DICOM input)",
            parse=parse_formats,
            text=lambda v: ",".join(sorted(v)),
            always=True,
        ),
    )
    seg_type: SegType = field(
        default="BINARY",
        metadata=_flag(
            "--seg-type",
            "DICOM SEG type (default binary)",
            choices=("binary", "labelmap"),
            parse=str.upper,
            text=str.lower,
            always=True,
        ),
    )
    modality: str = field(
        default=MODALITY_FROM_BUNDLE,
        metadata=_flag(
            "--modality",
            "DICOM Modality to take: auto (the bundle's input modality, default), any, or e.g. MR",
            always=True,
        ),
    )
    backend: str = field(
        default="auto",
        metadata=_flag(
            "--backend",
            "network runtime (default auto: the fastest installed one that agrees with torch on a check window)",
            choices=BACKEND_CHOICES,
            always=True,
        ),
    )
    cluster: Cluster = field(
        default="local",
        metadata=_flag(
            "--cluster",
            "local: this process (default); ray: Ray actors, each loading the bundle once (unetseg[ray])",
            choices=("local", "ray"),
            group=_SCALE_OUT,
        ),
    )
    num_threads: int | None = field(
        default=None,
        metadata=_flag("--threads", "CPU threads for the network (default: all)", metavar="N", type=int),
    )
    skip_empty: bool = field(
        default=True,
        metadata=_flag(
            "--no-skip-empty", "run the network on every window, also those entirely outside the body (3D)"
        ),
    )
    resample_float32: bool = field(
        default=True,
        metadata=_flag(
            "--float64-resampling",
            "resample in the bundle's own precision (MONAI's float64 default) instead of float32: labels "
            "exactly as python -m monai.bundle run gives them, at about twice the peak memory",
        ),
    )
    series_filters: tuple[str, ...] = field(
        default=(),
        metadata=_flag(
            "--series",
            "DICOM series rule Key=Value (exact, case-insensitive) or Key~Regex, e.g. "
            "SeriesDescription~T1; repeatable, all must match",
            metavar="RULE",
        ),
    )
    overlap: float | None = field(
        default=None, metadata=_flag("--overlap", "sliding-window overlap", metavar="F", type=float)
    )
    sw_batch_size: int | None = field(
        default=None, metadata=_flag("--sw-batch-size", "sliding-window batch size", metavar="N", type=int)
    )
    ref: Path | None = field(
        default=None,
        metadata=_flag(
            "--ref",
            "folder of reference labels named <case_id>.nii.gz (or .nii, .nrrd, .dcm SEG): score the cases "
            "of this run against them (Dice, HD95; metrics.csv, summary.json, scores.html in OUT, the scores "
            "also in report.html); references of cases not in this run are listed, not scored",
            metavar="DIR",
            type=Path,
        ),
    )
    tolerance_mm: float = 1.0
    shard: Shard | None = field(
        default=None,
        metadata=_flag(
            "--shard",
            "run only the K-th of N deterministic parts of the case list (for SLURM arrays and other "
            "schedulers); each part writes report-shard-K-of-N.json, `unetseg report OUT` joins them",
            metavar="K/N",
            parse=Shard.parse,
        ),
    )
    address: str | None = field(
        default=None,
        metadata=_flag(
            "--address",
            "the Ray cluster to join: auto, HOST:PORT or ray://HOST:PORT (default: start a local Ray runtime "
            "for this run and stop it after)",
            metavar="ADDR",
            group=_SCALE_OUT,
        ),
    )
    workers: int | None = field(
        default=None,
        metadata=_flag(
            "--workers",
            "Ray workers (default: cluster CPUs // threads)",
            metavar="N",
            type=int,
            group=_SCALE_OUT,
        ),
    )
    threads_per_worker: int | None = field(
        default=None,
        metadata=_flag(
            "--threads-per-worker",
            "CPU threads per Ray worker (default 1)",
            metavar="T",
            type=int,
            group=_SCALE_OUT,
        ),
    )
    read: ReadOptions = field(default_factory=ReadOptions)
    preview: bool = field(
        default=True,
        metadata=_flag(
            "--no-preview",
            "do not draw OUT/<case_id>/preview.png (statistics, flags and report.html are still written)",
        ),
    )
    resume: bool = field(
        default=False,
        metadata=_flag("--resume", "skip cases whose OUT/<case_id>/case.json shows complete outputs"),
    )
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
        self.inference_options(self.num_threads)  # device, window, backend and thread settings, checked there
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
        for f, flag in config_flags():
            value = getattr(self, f.name)
            if isinstance(value, bool):
                words += [flag.word] if value != f.default else []
            elif isinstance(value, tuple):
                for item in value:
                    words += [flag.word, flag.text(item)]
            elif value is not None and (flag.always or value != f.default):
                words += [flag.word, flag.text(value)]
        return tuple(words + _read_words(self.read))

    @classmethod
    def from_flags(cls, values: Mapping[str, Any], **fixed: Any) -> BatchConfig:
        """The configuration from the command line's values by field name (``None``, or an empty list for a
        repeatable option: the field's default), each through its :attr:`Flag.parse`; ``fixed``: the fields
        without a flag (inputs, bundle, out, read).

        Raises:
            InputError: a value a field refuses (names the option).
        """
        given: dict[str, Any] = {}
        for f, flag in config_flags():
            value = values.get(f.name)
            if value is None or (isinstance(f.default, tuple) and not value):
                continue
            if isinstance(f.default, tuple):
                value = tuple(value)
            given[f.name] = flag.parse(value) if flag.parse is not None else value
        return cls(**fixed, **given)

    def inference_options(self, threads: int | None) -> InferenceOptions:
        """How each worker loads and runs the bundle, with ``threads`` CPU threads (``None``: all).

        Raises:
            InputError: a setting out of range (:class:`~app.inference.options.InferenceOptions`).
        """
        return InferenceOptions(
            device=self.device,
            overlap=self.overlap,
            sw_batch_size=self.sw_batch_size,
            backend=self.backend,
            skip_empty=self.skip_empty,
            num_threads=threads,
            resample_float32=self.resample_float32,
        )

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


def config_flags() -> list[tuple[Field[Any], Flag]]:
    """The fields of :class:`BatchConfig` set by a ``unetseg infer`` option, with their :class:`Flag`, in field
    order."""
    return [(f, f.metadata["flag"]) for f in fields(BatchConfig) if "flag" in f.metadata]
