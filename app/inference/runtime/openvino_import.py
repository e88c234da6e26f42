"""``import openvino`` with OpenVINO's usage telemetry declined, so that nothing leaves the machine.

Why: ``openvino/__init__.py`` (2024.x to 2026.x) imports its model conversion tools, and
``openvino.tools.ovc`` sends a ``general_import`` event through ``openvino_telemetry`` *at import time*. Consent is
on by default (opt-out): unless ``~/intel/openvino_telemetry`` holds ``0``, the import writes a client id
(``~/intel/openvino_ga_cid``) and a run counter (``~/intel/stats``), and a worker thread resolves
``www.google-analytics.com`` and posts the event. Seen with ``strace -f -e trace=network`` on OpenVINO 2026.4.1
with openvino-telemetry 2025.2.0: a DNS query to the resolver on every ``import openvino``. A hospital network
flags that, and a clinical tool must not do it.

The ways OpenVINO documents to decline, and the one used here:

1. ``opt_in_out --opt_out`` (docs.openvino.ai, "OpenVINO Telemetry"): writes the consent file
   ``~/intel/openvino_telemetry``. Not used: it writes into the user's home, for every program of that user,
   for ever; that is the user's decision to make, not something a library does behind their back.
2. ``Telemetry(disable_in_ci=True)`` (openvino-telemetry's README: telemetry is disabled when a CI environment
   variable is set), which ``openvino.tools.ovc`` passes: consent is declined, before any file is touched, when
   ``CI`` is ``true`` (or ``TF_BUILD`` / ``JENKINS_URL`` is set; ``OptInChecker._run_in_ci`` of
   openvino-telemetry 2025.2, the newest release). **Used**: :func:`import_openvino` sets ``CI=true`` for the
   duration of the first ``import openvino`` only, then restores the previous value. The decision is taken
   once, at that import: the ``Telemetry`` object is a singleton whose ``consent`` stays ``False``, and every
   later ``send_event`` checks it, so the variable is not needed afterwards.

This is the one write to ``os.environ`` in ``app/`` (STYLE.md forbids them as hidden global state). It is
bounded: only here, only around the import, under a lock, restored in ``finally``, and skipped when OpenVINO
is already imported. Not chosen: blocking the import of ``openvino_telemetry`` (a ``None`` entry in
``sys.modules``) so that OVC falls back to its internal ``telemetry_stub``: that is an undocumented internal
path and a change to the import system of the whole process, not a documented switch.

``tests/cli/test_no_network.py`` runs ``unetseg infer --backend openvino`` under ``strace`` and an audit hook and
fails on any network connection or DNS lookup, so a future OpenVINO that ignores this switch is caught.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from types import ModuleType

logger = logging.getLogger(__name__)

#: the variable ``openvino_telemetry`` reads to decline consent in CI jobs, and the value it accepts
OPT_OUT_VARIABLE = ("CI", "true")

_lock = threading.Lock()


def import_openvino() -> ModuleType:
    """The ``openvino`` module, imported (the first time) with its telemetry declined; see the module docstring.

    Raises:
        ImportError: OpenVINO is not installed.
    """
    module = sys.modules.get("openvino")
    if module is not None:
        return module
    name, value = OPT_OUT_VARIABLE
    with _lock:
        module = sys.modules.get("openvino")
        if module is not None:
            return module
        before = os.environ.get(name)
        os.environ[name] = value
        try:
            import openvino
        finally:
            if before is None:
                del os.environ[name]
            else:
                os.environ[name] = before
    logger.debug("imported OpenVINO %s with its telemetry declined", getattr(openvino, "__version__", "?"))
    return openvino


__all__ = ["OPT_OUT_VARIABLE", "import_openvino"]
