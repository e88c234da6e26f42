"""Fixtures for the command-line tests: the demo run (bundles come from the root conftest)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_run(real_bundle, tmp_path_factory):
    """``unetseg demo`` run once for the session: ``(exit code, stdout, OUT)``."""
    from app.cli.main import main

    out = tmp_path_factory.mktemp("demo") / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["demo", "--out", str(out), "--bundle", str(real_bundle), "--device", "cpu"])
    return code, stdout.getvalue(), out


@pytest.fixture(scope="session")
def unetseg_cli(repo_root):
    """Run ``python -m app.cli.main ARGS`` in a subprocess with stdout and stderr piped (not a terminal), this
    checkout first on the import path (``env``: extra variables): returns the ``CompletedProcess`` (text)."""
    base_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")])),
    }

    def run(
        *args: object, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app.cli.main", *map(str, args)],
            cwd=cwd or repo_root,
            env={**base_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
