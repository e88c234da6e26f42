"""``OUT/<case_id>/case.json``: the per-case completion record that ``--resume`` trusts.

Rule: a case is **complete** when, and only when,

1. ``case.json`` exists and parses (it is written last, atomically, after every output of the case, so a run
   interrupted at any point leaves either no ``case.json`` or a complete one; a case that starts over deletes
   its old ``case.json`` first);
2. its fingerprint equals the current run's: same weights (SHA-256 of ``models/model.pt``), bundle version,
   unetseg version, output formats and SEG type, so a resumed run never mixes outputs of two models or two
   settings; and the same input (absolute path, number of files, total size, latest modification time), so a
   file replaced by another scan, or a case id that now names another file, is segmented again;
3. every output it lists is still in the case folder with the recorded size and SHA-256.

Anything else (missing, unreadable, different fingerprint, a file changed or gone) means the case is redone,
with the reason logged and reported.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.batch.records import CaseRecord
from app.checksums import sha256_file
from app.errors import OutputError
from app.run_layout import MANIFEST_NAME
from app.writing.atomic import TEMPORARY_PREFIX, atomic_write

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def manifest_path(case_dir: Path) -> Path:
    return Path(case_dir) / MANIFEST_NAME


def write_manifest(case_dir: Path, record: CaseRecord, fingerprint: Mapping[str, Any]) -> Path:
    """Write ``case.json`` for a finished case (call after all its outputs are written).

    Raises:
        OutputError: the file cannot be written.
    """
    path = manifest_path(case_dir)
    payload = {
        "schema": SCHEMA_VERSION,
        "completed": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": dict(fingerprint),
        "record": record.to_dict(),
    }
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def forget(case_dir: Path) -> None:
    """Remove ``case.json`` before a case (re)starts, so that it never vouches for outputs being rewritten, and
    the temporary files a killed writer left in the case folder (:func:`app.writing.atomic.temporary_sibling`)."""
    path = manifest_path(case_dir)
    try:
        path.unlink(missing_ok=True)
        for stale in Path(case_dir).glob(f"{TEMPORARY_PREFIX}*"):
            stale.unlink(missing_ok=True)
    except OSError as exc:
        raise OutputError(path, f"cannot remove the old completion record: {exc.strerror or exc}") from exc


def completed_record(case_dir: Path, fingerprint: Mapping[str, Any]) -> tuple[CaseRecord | None, str]:
    """``(record, "")`` when the case is complete (module docstring), else ``(None, why not)``."""
    path = manifest_path(case_dir)
    if not path.is_file():
        return None, "no case.json (not run, or interrupted)"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        record = CaseRecord.from_dict(payload["record"])
        recorded = payload["fingerprint"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        return None, f"case.json unreadable ({type(exc).__name__}: {exc})"
    if payload.get("schema") != SCHEMA_VERSION:
        return None, f"case.json schema {payload.get('schema')!r} is not {SCHEMA_VERSION}"
    changed = sorted(k for k in set(recorded) | set(fingerprint) if recorded.get(k) != fingerprint.get(k))
    if changed:
        return None, f"made with other settings ({', '.join(changed)} differ)"
    if record.status not in ("ok", "partial") or not record.outputs:
        return None, "case.json records no successful outputs"
    for output in record.outputs:
        file = Path(case_dir) / Path(output.path).name
        if not file.is_file():
            return None, f"output {file.name} is missing"
        if file.stat().st_size != output.bytes or sha256_file(file) != output.sha256:
            return None, f"output {file.name} differs from the one case.json records"
    return record, ""
