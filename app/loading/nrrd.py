"""NRRD file -> :class:`~app.volume.Volume` in RAS (pynrrd).

Contract: ``array`` is ``(i, j, k)`` (or ``(i, j)``) in index order, i.e. NRRD's fastest axis first; the affine
columns are the ``space directions`` and its origin the ``space origin`` (zero if absent), expressed in the
file's ``space`` and then converted to RAS with :func:`app.volume.convert_affine` (via
:meth:`Volume.in_space`). Supported spaces: ``left-posterior-superior``/``LPS`` and
``right-anterior-superior``/``RAS`` (others, e.g. ``scanner-xyz`` or ``left-anterior-superior``, are refused).
Non-spatial axes (``space directions`` "none", e.g. a ``list`` or ``vector`` axis) are dropped when their size
is 1 and refused otherwise. A 2D image gets the unit normal of its plane as third affine column.
``meta``: ``format``, ``space`` (as written in the file).
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from app.errors import InputError
from app.volume import Volume

logger = logging.getLogger(__name__)

_SPACES: dict[str, Literal["LPS", "RAS"]] = {
    "left-posterior-superior": "LPS",
    "lps": "LPS",
    "right-anterior-superior": "RAS",
    "ras": "RAS",
}


def read_nrrd(path: str | Path) -> Volume:
    """Read ``path`` (``.nrrd`` or ``.nhdr``) as a RAS volume (contract in the module docstring).

    Raises:
        InputError: unreadable file, missing or unsupported space information, or a multi-component image.
    """
    import nrrd  # pynrrd: part of the app extras, not of the core install

    path = Path(path)
    try:
        data, header = nrrd.read(str(path))
    except (nrrd.NRRDError, OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputError(path, f"cannot read as NRRD: {exc}") from exc
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
