"""Walking input folders: every non-hidden file, any depth, sorted (no DICOM parsing, so no pydicom import)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)


def walk_files(roots: Iterable[str | Path]) -> Iterator[Path]:
    """Every non-hidden file under ``roots`` (files are yielded as given), sorted, ``DICOMDIR`` excluded."""
    for root in roots:
        root = Path(root)
        if root.is_file():
            yield root
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith(".") or name.upper() == "DICOMDIR":
                    logger.debug("skip %s (hidden or DICOMDIR)", Path(folder, name))
                    continue
                yield Path(folder, name)
