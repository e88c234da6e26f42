"""Run the MONAI Label server as a supervised child: a signal to ``unetseg serve`` stops the server it started.

``subprocess.call`` left the server running when the wrapper got ``SIGTERM`` (the default action ends the
wrapper at once, with no clean-up), an orphan still holding its port. Here the server runs as the leader of its
own process group (so do the training processes it starts); ``SIGINT``, ``SIGTERM`` and ``SIGHUP`` to the
wrapper are forwarded to that whole group, the wrapper waits for the server to exit (``SIGKILL`` to the group
after ``grace_s``), then ends whatever is left of the group. On Linux the server also gets ``SIGTERM`` if the
wrapper dies without a chance to forward anything (``SIGKILL``), through ``PR_SET_PDEATHSIG``.

Only the standard library is used.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """In the child: ask Linux to send SIGTERM when the parent dies (best effort; not on other systems)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def run_supervised(
    cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None, grace_s: float = 30.0
) -> int:
    """Run ``cmd`` in its own process group until it exits; see the module docstring.

    Returns:
        the server's exit code, or ``128 + signal`` when a forwarded signal ended it (130 for Ctrl+C, 143 for
        ``kill``).
    """
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    pgid = proc.pid  # start_new_session: the child leads its own session and process group
    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        logger.info("forwarding %s to the server (process group %d)", signal.Signals(signum).name, pgid)
        _signal_group(pgid, signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        deadline = None
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if received and deadline is None:
                    deadline = time.monotonic() + grace_s
                if deadline is not None and time.monotonic() > deadline:
                    logger.warning("the server did not stop within %.0f s; killing it", grace_s)
                    _signal_group(pgid, signal.SIGKILL)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _end_group(pgid, grace_s=min(grace_s, 10.0))
    if received:
        return 128 + received[0]
    return code if code >= 0 else 128 - code


def _end_group(pgid: int, grace_s: float) -> None:
    """End what is left of the server's process group (training processes it started): TERM, then KILL."""
    if not _group_alive(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)


__all__ = ["run_supervised"]
