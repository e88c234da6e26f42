"""Atomic file output: a final path holds either the previous file or the complete new one, never half of one.

Usage::

    with atomic_write("out/label.nii.gz") as tmp:
        nibabel.save(image, tmp)      # any writer that takes a path

The block writes to a temporary file in the destination folder (same file system, so the rename is atomic).
When the block succeeds the temporary file is flushed to disk (``fsync``) and moved onto the final path with
``os.replace``; when it raises, the temporary file is removed and the final path is left untouched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from app.errors import OutputError

logger = logging.getLogger(__name__)


#: the name prefix of every temporary file (a process killed mid-write leaves one behind)
TEMPORARY_PREFIX = ".tmp-"


def temporary_sibling(path: Path) -> Path:
    """A fresh hidden name in ``path``'s folder that ends with ``path``'s own name.

    Keeping the full name as the suffix keeps extensions such as ``.nii.gz`` that writers use to pick a format.
    """
    return path.parent / f"{TEMPORARY_PREFIX}{secrets.token_hex(6)}-{path.name}"


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; publish it at ``path`` only if the block completes.

    Args:
        path: the final file. Missing parent folders are created. An existing file there is replaced
            (atomically) on success and left as it was on failure.

    Yields:
        The temporary path to write to (an empty file already exists there, created with the usual
        permissions, i.e. ``0o666`` minus the process umask).

    Raises:
        OutputError: the folder cannot be created, ``path`` is a folder, the writer hit an ``OSError``
            (disk full, permission denied) or produced no file. Other exceptions from the block propagate
            unchanged; in every case the temporary file is removed.
    """
    final = Path(path)
    if final.is_dir():
        raise OutputError(final, "is a folder; give the path of the file to write")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_sibling(final)
        # O_EXCL: never clobber another writer's temporary file; mode 0o666 lets the umask decide permissions.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise OutputError(final, f"cannot create a file in {final.parent}: {exc.strerror or exc}") from exc

    try:
        yield tmp
        if not tmp.is_file():
            raise OutputError(final, "the writer did not produce a file (internal error)")
        _fsync_file(tmp)
        os.replace(tmp, final)
    except OSError as exc:
        _remove_quietly(tmp)
        raise OutputError(final, f"writing failed: {exc.strerror or exc}") from exc
    except BaseException:
        # Anything else (a bug in the writer, UnetsegError, KeyboardInterrupt): clean up, then let it through.
        _remove_quietly(tmp)
        raise
    _fsync_folder(final.parent)
    logger.debug("wrote %s", final)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX). Not every platform can open a folder; that is not an error."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # e.g. some network file systems refuse fsync on folders
        logger.debug("fsync of folder %s not supported: %s", folder, exc)
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("could not remove temporary file %s: %s", path, exc)


__all__ = ["TEMPORARY_PREFIX", "atomic_write", "temporary_sibling"]
