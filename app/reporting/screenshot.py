"""Render a report page to a PNG with headless Chromium (for visual checks and documentation).

Contract: :func:`render_png` writes ``png`` from ``html`` (a local file) and returns its path. Chromium is
found on PATH (``chromium``, ``chromium-browser``, ``google-chrome``); without it, :class:`OutputError`
says how to install it. The page is rendered at ``width`` x ``height`` CSS pixels (a tall window captures a
long report in one picture).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from app.errors import InputError, OutputError

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """Path of a Chromium-family browser on PATH, or ``None``."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def render_png(
    html: str | Path, png: str | Path, *, width: int = 1200, height: int = 4000, timeout_s: float = 120
) -> Path:
    """Screenshot ``html`` into ``png`` with headless Chromium.

    Raises:
        InputError: ``html`` does not exist.
        OutputError: no browser, the browser failed, or it wrote no picture.
    """
    html, png = Path(html).resolve(), Path(png).resolve()
    if not html.is_file():
        raise InputError(html, "report page not found")
    browser = find_chromium()
    if browser is None:
        raise OutputError(png, "no Chromium on PATH; install it (Debian: apt-get install -y chromium)")
    png.unlink(missing_ok=True)
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--window-size={width},{height}",
        f"--screenshot={png}",
        html.as_uri(),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OutputError(png, f"Chromium did not finish: {exc}") from exc
    if done.returncode != 0 or not png.is_file():
        raise OutputError(png, f"Chromium failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return png
