"""Pair prediction files with reference files (and optional images) by case id.

Contract: a *case id* is a file name without its label-file extension (``.nii.gz``, ``.nii``, ``.nrrd``,
``.nhdr``, ``.png``, ``.tif``, ``.tiff``, ``.dcm``). A prediction also pairs when its id carries a ``_seg``
suffix (``hippocampus_001_seg.nii.gz`` pairs with ``hippocampus_001.nii.gz``), and an image when its id
carries nnU-Net's ``_0000`` channel suffix; so does a prediction of such an image (``infer`` names it
``<case>_0000_seg``: nnU-Net's ``imagesTs/<case>_0000.nii.gz`` and ``labelsTs/<case>.nii.gz`` layout pairs). A folder is scanned at its top level and one level down, so
both a flat folder and the folder-per-case layout ``OUT/<stem>/<stem>_seg.nii.gz`` work; other files and
hidden files are ignored. In a case folder an ``unetseg infer`` run completed (:mod:`app.run_layout`), the
preview picture and a DICOM SEG beside the label map are that run's other outputs, not predictions: they are
skipped (counted in the log), not listed as unused. Two files with the same id: the one with the preferred extension (the order
above) wins and the other is listed as unused, with the reason. A reference without a prediction is a
:class:`Pair` with ``pred=None`` (a failed case, never dropped); a prediction without a reference is listed
in :attr:`Pairing.unused`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.formats import SUFFIXES, split_suffix
from app.run_layout import SEG_SUFFIX, companion_files

logger = logging.getLogger(__name__)

#: label file extensions, in order of preference when two files share a case id (:mod:`app.formats`)
EXTENSIONS = tuple(suffix for suffix, _ in SUFFIXES)
IMAGE_SUFFIXES = ("_0000",)
#: a prediction of ``infer`` is ``<case_id>_seg``; an image in nnU-Net's layout (``<case>_0000.nii.gz``, its
#: reference ``<case>.nii.gz``) gives the case id ``<case>_0000``, so its prediction pairs without both
PREDICTION_SUFFIXES = (SEG_SUFFIX, *(f"{channel}{SEG_SUFFIX}" for channel in IMAGE_SUFFIXES), *IMAGE_SUFFIXES)


@dataclass(frozen=True)
class Pair:
    """A reference and its prediction (``None``: the prediction is missing)."""

    case_id: str
    ref: Path
    pred: Path | None


@dataclass(frozen=True)
class Pairing:
    """Pairs in case-id order, plus files that were not used and why."""

    pairs: list[Pair]
    unused: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def missing_predictions(self) -> list[str]:
        return [p.case_id for p in self.pairs if p.pred is None]


def split_extension(path: Path) -> tuple[str, str] | None:
    """``(stem, extension)`` for a label file name, ``None`` for other files."""
    return split_suffix(path)


def case_id(path: Path, *, suffixes: Sequence[str] = ()) -> str:
    """The case id of ``path``: its name without extension and without one of ``suffixes``."""
    split = split_extension(Path(path))
    stem = split[0] if split else Path(path).name
    for suffix in suffixes:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def label_files(root: Path) -> list[Path]:
    """Label-like files of ``root`` (a file, or a folder scanned at depth 1 and 2), sorted."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and split_extension(entry):
            found.append(entry)
        elif entry.is_dir():
            found.extend(
                f
                for f in sorted(entry.iterdir())
                if f.is_file() and not f.name.startswith(".") and split_extension(f)
            )
    return found


def pair_files(pred: Path, ref: Path) -> Pairing:
    """Pair the label files under ``pred`` with those under ``ref`` (files or folders).

    Two single files always pair with each other, whatever their names (case id from the reference).
    """
    pred, ref = Path(pred), Path(ref)
    if pred.is_file() and ref.is_file():
        return Pairing(pairs=[Pair(case_id=case_id(ref), ref=ref, pred=pred)])
    refs, unused = reference_files(ref)
    preds: dict[str, list[Path]] = {}
    files = label_files(pred)
    by_folder: dict[Path, list[Path]] = {}
    for f in files:
        by_folder.setdefault(f.parent, []).append(f)
    companions = {f for folder, group in by_folder.items() for f in companion_files(folder, group)}
    if companions:
        logger.info(
            "skipped %d previews and DICOM SEGs of infer case folders under %s", len(companions), pred
        )
    for path in (f for f in files if f not in companions):
        cid = _match(path, refs, PREDICTION_SUFFIXES)
        if cid is None:
            unused.append((path, "no reference with this case id"))
        else:
            preds.setdefault(cid, []).append(path)
    pairs = []
    for cid, ref_path in sorted(refs.items()):
        chosen = _preferred(preds.get(cid, []), unused, cid)
        pairs.append(Pair(case_id=cid, ref=ref_path, pred=chosen))
    logger.info(
        "paired %d of %d references; %d unused files",
        sum(p.pred is not None for p in pairs),
        len(pairs),
        len(unused),
    )
    return Pairing(pairs=pairs, unused=unused)


def reference_files(ref: Path) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
    """The reference label files under ``ref`` (a file or folder) by case id, and the files not used (a second
    file for a case id: the preferred extension wins, module docstring)."""
    unused: list[tuple[Path, str]] = []
    return _by_id(label_files(Path(ref)), (), unused), unused


def pair_images(images: Path, case_ids: Iterable[str]) -> dict[str, Path]:
    """Image files under ``images`` for ``case_ids`` (ids may carry ``_0000``); cases without one are left out."""
    wanted = {cid: cid for cid in case_ids}
    found: dict[str, list[Path]] = {}
    for path in label_files(images):
        cid = _match(path, wanted, IMAGE_SUFFIXES)
        if cid is not None:
            found.setdefault(cid, []).append(path)
    unused: list[tuple[Path, str]] = []
    return {cid: p for cid, paths in found.items() if (p := _preferred(paths, unused, cid)) is not None}


def _match(path: Path, known: Mapping[str, object], suffixes: Sequence[str]) -> str | None:
    """The case id in ``known`` that ``path`` pairs with: its exact stem first, then without one of ``suffixes``
    (tried in order)."""
    return match_id(case_id(path), known, suffixes)


def match_id(cid: str, known: Mapping[str, object], suffixes: Sequence[str]) -> str | None:
    """``cid`` if ``known`` has it, else ``cid`` without the first of ``suffixes`` that leaves an id ``known`` has,
    else ``None``."""
    if cid in known:
        return cid
    for suffix in suffixes:
        if cid.endswith(suffix) and len(cid) > len(suffix) and cid[: -len(suffix)] in known:
            return cid[: -len(suffix)]
    return None


def _by_id(paths: list[Path], suffixes: Sequence[str], unused: list[tuple[Path, str]]) -> dict[str, Path]:
    grouped: dict[str, list[Path]] = {}
    for path in paths:
        grouped.setdefault(case_id(path, suffixes=suffixes), []).append(path)
    return {cid: p for cid, group in grouped.items() if (p := _preferred(group, unused, cid)) is not None}


def _preferred(paths: list[Path], unused: list[tuple[Path, str]], cid: str) -> Path | None:
    """The file to use among ``paths`` (same case id); the others go to ``unused``."""
    if not paths:
        return None
    ranked = sorted(paths, key=_rank)
    for other in ranked[1:]:
        logger.warning("case %s: using %s, ignoring %s", cid, ranked[0], other)
        unused.append((other, f"another file for case {cid} was used: {ranked[0].name}"))
    return ranked[0]


def _rank(path: Path) -> tuple[int, bool, str]:
    """Sort key: preferred extension first, then a ``_seg`` name, then the path."""
    split = split_extension(path)
    ext_rank = EXTENSIONS.index(split[1]) if split else len(EXTENSIONS)
    return ext_rank, not case_id(path).endswith("_seg"), str(path)
