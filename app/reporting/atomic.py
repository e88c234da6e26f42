"""Atomic writes of whole report files (text or bytes), built on :func:`app.writing.atomic.atomic_write`.

Contract: :func:`write_atomic` publishes ``data`` at ``path`` completely or not at all (temporary file in the
same folder, fsync, ``os.replace``).
"""

from __future__ import annotations

from pathlib import Path

from app.writing.atomic import atomic_write


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically; return the path.

    Raises:
        OutputError: the folder cannot be created or written.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_write(path) as tmp:
        tmp.write_bytes(payload)
    return Path(path)
