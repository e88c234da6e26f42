"""NRRD file -> :class:`~app.volume.Volume` in RAS (pynrrd).

Contract: ``array`` is ``(i, j, k)`` (or ``(i, j)``) in index order, i.e. NRRD's fastest axis first; the affine
columns are the ``space directions`` and its origin the ``space origin`` (zero if absent), expressed in the
file's ``space`` and then converted to RAS with :func:`app.volume.convert_affine` (via
:meth:`Volume.in_space`). Supported spaces: ``left-posterior-superior``/``LPS`` and
``right-anterior-superior``/``RAS`` (others, e.g. ``scanner-xyz`` or ``left-anterior-superior``, are refused).
Non-spatial axes (``space directions`` "none", e.g. a ``list`` or ``vector`` axis) are dropped when their size
is 1 and refused otherwise. A 2D image gets the unit normal of its plane as third affine column.
``meta``: ``format``, ``space`` (as written in the file). Bad input raises :class:`~app.errors.InputError` only.

Size, checked from the header before any voxel is read: ``sizes`` x the bytes of ``type`` must fit in
:attr:`ReadOptions.max_bytes`. The data (attached, or the ``data file`` of a detached header, which must be a
regular file) are bounded too: raw or text data may be at most ``max_bytes`` long, and gzip/bzip2 data are first
inflated without being kept, stopping as soon as they exceed the declared size (pynrrd keeps whatever a
stream inflates to, so a small declared size over a decompression bomb would otherwise exhaust memory). That
costs one extra decompression pass for compressed NRRDs.
"""

from __future__ import annotations

import bz2
import logging
import zlib
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from app.errors import InputError
from app.loading.options import ReadOptions, check_declared_size, format_bytes
from app.volume import Volume

logger = logging.getLogger(__name__)

_SPACES: dict[str, Literal["LPS", "RAS"]] = {
    "left-posterior-superior": "LPS",
    "lps": "LPS",
    "right-anterior-superior": "RAS",
    "ras": "RAS",
}


#: gzip/bzip2 data are inflated in steps of at most this many bytes while they are measured
_STEP = 2**20


def read_nrrd(path: str | Path, options: ReadOptions | None = None) -> Volume:
    """Read ``path`` (``.nrrd`` or ``.nhdr``) as a RAS volume (contract in the module docstring).

    Args:
        path: the file.
        options: the size limit; ``None`` for the defaults.

    Raises:
        InputError: unreadable or corrupt file, a declared size over the limit, missing or unsupported space
            information, or a multi-component image.
    """
    import nrrd  # pynrrd: part of the app extras, not of the core install

    path = Path(path)
    options = options or ReadOptions()
    try:
        with open(path, "rb") as fh:
            header = nrrd.read_header(fh)
            start = fh.tell()
            _check_data(path, header, start, options)
            fh.seek(start)
            data = nrrd.read_data(header, fh, str(path))
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - pynrrd raises NRRDError, ValueError, KeyError, zlib.error, ...
        raise InputError(path, f"cannot read as NRRD ({type(exc).__name__}: {exc})") from exc
    space_name = str(header.get("space", "")).strip()
    space = _SPACES.get(space_name.lower())
    if space is None:
        raise InputError(
            path,
            f"NRRD space {space_name or '(none)'!r} is not supported; expected "
            "'left-posterior-superior' or 'right-anterior-superior'",
        )
    directions = header.get("space directions")
    if directions is None:
        raise InputError(path, "NRRD without 'space directions': the voxel geometry is unknown")
    directions = np.asarray(directions, dtype=np.float64)
    if directions.ndim != 2 or directions.shape[0] != data.ndim:
        raise InputError(
            path,
            f"'space directions' has {directions.shape[0] if directions.ndim else 0} rows for {data.ndim} axes",
        )
    spatial = np.all(np.isfinite(directions), axis=1)
    for axis in np.flatnonzero(~spatial):
        if data.shape[axis] != 1:
            raise InputError(
                path,
                f"axis {axis} (kind {_kind(header, int(axis))}) has {data.shape[axis]} components; "
                "multi-component images are not supported",
            )
    data = data.reshape([n for n, keep in zip(data.shape, spatial, strict=True) if keep], order="A")
    directions = directions[spatial]
    if directions.shape[0] not in (2, 3) or directions.shape[1] != 3:
        raise InputError(
            path,
            f"{directions.shape[0]} spatial axes in a {directions.shape[1]}D space; "
            "expected a 2D or 3D image in 3D space",
        )
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=np.float64)
    if origin.shape != (3,):
        raise InputError(path, f"'space origin' {origin.tolist()} is not 3 numbers")
    affine = np.eye(4)
    affine[:3, : directions.shape[0]] = directions.T
    if directions.shape[0] == 2:
        normal = np.cross(directions[0], directions[1])
        affine[:3, 2] = normal / np.linalg.norm(normal)
    affine[:3, 3] = origin
    if not np.all(np.isfinite(affine)):
        raise InputError(path, "non-finite 'space directions' or 'space origin'")
    volume = Volume(
        array=data, affine=affine, space=space, source=str(path), meta={"format": "nrrd", "space": space_name}
    )
    return volume.in_space("RAS")


def _kind(header: dict, axis: int) -> str:
    kinds = header.get("kinds") or []
    return str(kinds[axis]) if axis < len(kinds) else "?"


def _check_data(path: Path, header: dict[str, Any], start: int, options: ReadOptions) -> None:
    """Refuse a declared size over the limit, and data that would inflate or read past it (module docstring)."""
    from nrrd.reader import _determine_datatype  # pynrrd's own NRRD type -> dtype map

    sizes = [int(n) for n in np.atleast_1d(header.get("sizes", []))]
    if not sizes or min(sizes) < 1:
        raise InputError(path, f"NRRD sizes {sizes} declare no voxels")
    itemsize = _determine_datatype(header).itemsize
    declared = check_declared_size(path, sizes, itemsize, options)
    name = header.get("datafile", header.get("data file"))
    source = path if name is None else (path.parent / str(name))
    if not source.is_file():
        raise InputError(path, f"NRRD data file {source} is not a regular file")
    offset = start if name is None else 0
    encoding = str(header.get("encoding", "")).lower()
    if encoding not in ("gzip", "gz", "bzip2", "bz2"):
        length = source.stat().st_size - offset
        if length > options.max_bytes:
            raise InputError(
                path,
                f"{format_bytes(length)} of NRRD data exceed the limit of {format_bytes(options.max_bytes)} "
                "(ReadOptions.max_bytes)",
            )
        return
    skip = int(header.get("byteskip", header.get("byte skip", 0)))
    limit = declared + skip if skip >= 0 else options.max_bytes
    with open(source, "rb") as fh:
        fh.seek(offset)
        for _ in range(int(header.get("lineskip", header.get("line skip", 0)))):
            fh.readline()
        inflated = _inflated_size(fh, encoding, limit)
    if inflated > limit:
        raise InputError(
            path,
            f"the {encoding} data inflate to more than the {format_bytes(limit)} the header declares "
            "(a decompression bomb or a corrupt file); refused before keeping any voxel",
        )


def _inflated_size(fh: IO[bytes], encoding: str, limit: int) -> int:
    """Bytes the gzip/bzip2 stream in ``fh`` inflates to, counted without keeping them; stops past ``limit``."""
    total = 0
    if encoding in ("gzip", "gz"):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)  # as pynrrd: the first gzip member
        while not inflater.eof and total <= limit and (chunk := fh.read(_STEP)):
            while chunk and total <= limit:
                total += len(inflater.decompress(chunk, _STEP))
                chunk = inflater.unconsumed_tail
        return total
    bunzip = bz2.BZ2Decompressor()
    while not bunzip.eof and total <= limit and (chunk := fh.read(_STEP)):
        total += len(bunzip.decompress(chunk, _STEP))
        while not bunzip.eof and not bunzip.needs_input and total <= limit:
            total += len(bunzip.decompress(b"", _STEP))
    return total
