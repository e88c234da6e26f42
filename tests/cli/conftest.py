"""Fixtures for the command-line tests: the demo run (bundles come from the root conftest)."""

from __future__ import annotations

import contextlib
import io

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
