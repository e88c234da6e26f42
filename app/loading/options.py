"""What every reader of the loading stage is told: the size limit and the orientation policy.

:class:`ReadOptions` is shared by the NIfTI, NRRD, PNG/TIFF and DICOM readers (the DICOM reader's own
:class:`~app.loading.dicom.options.DicomReadOptions` extends it with stack tolerances). Every reader computes the
size a file *declares* (header dimensions x bytes per voxel of the output, or of the stored data if wider) and
calls :func:`check_declared_size` before it reads or decompresses a single voxel, so a 352-byte file that
declares 4000 x 4000 x 4000 float32 voxels is refused in microseconds instead of exhausting memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.errors import InputError

#: default :attr:`ReadOptions.max_bytes`: 4 GiB, a 1024 x 1024 x 1024 float32 volume
DEFAULT_MAX_BYTES = 4 * 1024**3


@dataclass(frozen=True, kw_only=True)
class ReadOptions:
    """Limits and policies of all readers.

    Attributes:
        max_bytes: refuse an input whose declared size (voxels x bytes per voxel of the output array, or of the
            stored data if wider) is larger, before any voxel is read or decompressed.
        strict_orientation: refuse a NIfTI file whose qform and sform disagree (see :mod:`app.loading.nifti`)
            instead of following its sform with a warning. Other formats carry one orientation and ignore it.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    strict_orientation: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_bytes, int) or self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive integer, got {self.max_bytes!r}")


def format_bytes(n: int) -> str:
    """``n`` bytes for messages: whole MiB from 1 MiB up (``4096 MiB``), else bytes."""
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n} bytes"


def check_declared_size(
    path: str | Path | None, shape: Sequence[int], bytes_per_voxel: int, options: ReadOptions
) -> int:
    """Refuse ``shape`` x ``bytes_per_voxel`` above ``options.max_bytes``; return the declared size in bytes.

    ``shape`` is in the reader's index order (``i, j[, k]``); the message is the same for every format.

    Raises:
        InputError: the declared size exceeds the limit.
    """
    dims = [int(n) for n in shape]
    declared = math.prod(dims) * int(bytes_per_voxel)
    if declared > options.max_bytes:
        raise InputError(
            path,
            f"declared size {'x'.join(map(str, dims))} voxels x {bytes_per_voxel} bytes = {format_bytes(declared)} "
            f"exceeds the limit of {format_bytes(options.max_bytes)} (ReadOptions.max_bytes); refused before "
            "reading any voxel. If the image is real, raise the limit (unetseg infer --max-input-gib)",
        )
    return declared
