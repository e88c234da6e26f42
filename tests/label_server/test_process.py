"""``unetseg serve``'s child supervision (app/label_server/process.py): a signal to the wrapper stops the server it
started and the processes the server started, so no orphan keeps the port. With a stand-in server (a Python
process that starts a grandchild, as MONAI Label starts training processes); the real server is in
``test_server_security.py``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SERVER = r"""
import os, signal, subprocess, sys, time
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(os.getpid(), worker.pid, flush=True)
time.sleep(600)
"""

WRAPPER = r"""
import sys
from pathlib import Path
from app.label_server.process import run_supervised
server = [sys.executable, "-c", sys.argv[1], sys.argv[2]]
sys.exit(run_supervised(server, cwd=Path.cwd(), grace_s=float(sys.argv[3])))
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _start(kind: str, grace_s: float) -> tuple[subprocess.Popen, int, int]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    wrapper = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, SERVER, kind, str(grace_s)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the test's own signals go to the wrapper alone
    )
    server, worker = (int(x) for x in wrapper.stdout.readline().split())
    assert _alive(server) and _alive(worker)
    return wrapper, server, worker


def _gone_within(pids: tuple[int, ...], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_a_signal_to_the_wrapper_stops_the_server_and_its_workers(signum, code):
    wrapper, server, worker = _start("polite", grace_s=20)
    os.kill(wrapper.pid, signum)
    assert wrapper.wait(timeout=30) == code
    assert _gone_within((server, worker), 15), "an orphan survived the wrapper"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_a_server_that_ignores_sigterm_is_killed_after_the_grace_period():
    wrapper, server, worker = _start("stubborn", grace_s=1)
    started = time.monotonic()
    os.kill(wrapper.pid, signal.SIGTERM)
    assert wrapper.wait(timeout=30) == 143
    assert _gone_within((server, worker), 15)
    assert time.monotonic() - started < 15


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_the_server_gets_sigterm_when_the_wrapper_is_killed_outright():
    wrapper, server, worker = _start("polite", grace_s=20)
    try:
        os.kill(wrapper.pid, signal.SIGKILL)
        wrapper.wait(timeout=30)
        assert _gone_within((server,), 15), "the server outlived a SIGKILLed wrapper"
    finally:  # nobody forwarded anything: the server's own worker is an orphan now (documented limit)
        for pid in (server, worker):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
