"""The one file checksum of unetseg: SHA-256 of a file's bytes, read in 1 MiB blocks (bundle weights in provenance
and fingerprints, every written output in ``case.json``, the label server's served weights)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
