"""The one per-case error boundary of a batch: whatever one case raises fails that case alone.

Contract of :func:`run_isolated` (the only place in unetseg where a case's failure is caught):

* :class:`~app.errors.UnetsegError` (an input, bundle or output problem a user can cause and fix) fails the
  case as ``failure="refused"``, reason ``"<ErrorType>: <path>: <what and how to fix>"``;
* pydicom's and nibabel's "not what it claims to be" errors are refusals too (the readers normally convert
  them; these are the ones raised later, by MONAI's own loader);
* **any other exception** (``MemoryError``, a ``ValueError`` from a decoder, a bug in a transform, an error
  inside the network runtime) fails the case as ``failure="internal"``, reason ``"internal error:
  <ExceptionType>: <message>[: caused by <RootType>: <root message>] (traceback in <run log>)"`` (the root of
  the ``raise ... from`` chain: MONAI's "applying transform Spacingd" hides the real error in ``__cause__``;
  ``<X object at 0x...>`` is shortened to ``X``); the traceback goes to the run's log file
  (:mod:`app.batch.run_log`) through the ``app.batch.failures`` logger, never to the console;
* every reason is one line (whitespace normalised): the console prints it under the case's line;
* ``KeyboardInterrupt`` and ``SystemExit`` (Ctrl-C, SIGTERM as the CLI maps it) are not caught: the files
  this case already wrote at final paths are removed first (atomic writers leave no partial file; this
  removes the complete files of a case that never got its ``case.json``), and the record goes back to
  ``pending``, so the interrupted case leaves nothing behind and ``--resume`` redoes it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from app.batch.records import CaseRecord
from app.errors import InputError, UnetsegError
from app.loading import Case

logger = logging.getLogger(__name__)
#: tracebacks of internal errors; the run log has a handler for it, the console does not (propagate=False)
failure_log = logging.getLogger("app.batch.failures")
failure_log.propagate = False


def run_isolated(
    case: Case, record: CaseRecord, work: Callable[[], object], *, run_log: Path | None = None
) -> CaseRecord:
    """Run ``work`` (one case, filling ``record``) inside the error boundary (contract in the module docstring)."""
    started = time.perf_counter()
    try:
        work()
    except UnetsegError as exc:
        _fail(record, "refused", f"{type(exc).__name__}: {exc}")
    except _decode_errors() as exc:
        refusal = InputError(case.source, f"cannot decode {case.kind} data: {type(exc).__name__}: {exc}")
        _fail(record, "refused", f"InputError: {refusal}")
    except Exception as exc:  # noqa: BLE001 - the one per-case boundary: anything else fails this case alone
        where = f"traceback in {run_log}" if run_log is not None else "traceback in the log"
        failure_log.error("case %s (%s): internal error", case.case_id, case.source, exc_info=exc)
        _fail(record, "internal", f"internal error: {type(exc).__name__}: {_message(exc)} ({where})")
    except BaseException:
        _discard_outputs(record)
        raise
    record.timings_s.setdefault("total", time.perf_counter() - started)
    if record.status == "ok":
        logger.info("case %s: ok in %.1f s", case.case_id, record.timings_s["total"])
    return record


def _fail(record: CaseRecord, failure: str, reason: str) -> None:
    reason = " ".join(reason.split())  # one line: nibabel's messages, for one, hold newlines
    record.status, record.failure, record.reason = "failed", failure, reason  # type: ignore[assignment]
    # INFO: the reason is in the record, which the observer shows with the case's line (and the run log keeps)
    logger.info("case %s failed: %s", record.case_id, reason)


def _message(exc: BaseException) -> str:
    """The exception's message and its root cause's on one line, at most 500 characters (a report cell, not a
    traceback)."""
    text = _one_line(exc, 500)
    root = exc
    seen = {id(exc)}
    while root.__cause__ is not None and id(root.__cause__) not in seen:
        root = root.__cause__
        seen.add(id(root))
    if root is exc:
        return text
    return f"{_one_line(exc, 200)}: caused by {type(root).__name__}: {_one_line(root, 300)}"


#: ``repr`` of an object without its own: ``<monai.transforms.spatial.dictionary.Spacingd object at 0x7f...>``
_OBJECT_REPR = re.compile(r"<(\S+?) object at 0x[0-9a-fA-F]+>")


def _one_line(exc: BaseException, limit: int) -> str:
    """``str(exc)`` on one line, an object's default repr shortened to its class name, at most ``limit`` chars."""
    text = " ".join(str(exc).split()) or "(no message)"
    text = _OBJECT_REPR.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _discard_outputs(record: CaseRecord) -> None:
    """Remove the files an interrupted case already published (it has no ``case.json`` to vouch for them)."""
    for output in record.outputs:
        try:
            Path(output.path).unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("case %s: could not remove %s: %s", record.case_id, output.path, exc)
    record.outputs.clear()
    record.status, record.reason, record.seg = "pending", "interrupted before it finished", None


def _decode_errors() -> tuple[type[BaseException], ...]:
    """pydicom's and nibabel's "this file is not what it claims" errors."""
    from nibabel.filebasedimages import ImageFileError
    from pydicom.errors import InvalidDicomError

    return (InvalidDicomError, ImageFileError)
