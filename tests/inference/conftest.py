"""Fixtures for the inference tests: the root conftest's frozen real bundle, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_CASES = REPO / "app" / "demo" / "data" / "hippocampus"


@pytest.fixture(scope="session")
def loaded_real(real_bundle):
    from app.inference import InferenceOptions, load_bundle

    return load_bundle(real_bundle, InferenceOptions(device="cpu"))


@pytest.fixture(scope="session")
def demo_cases() -> Path:
    return DEMO_CASES
