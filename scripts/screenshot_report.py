"""Render an evaluation report (report.html) to a PNG with headless Chromium.

Usage: python scripts/screenshot_report.py REPORT_HTML OUT_PNG [--width 1200] [--height 4000]
"""

from __future__ import annotations

import argparse
import sys

from app.errors import UnetsegError
from app.reporting.screenshot import render_png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", help="the report.html to render")
    parser.add_argument("png", help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=4000)
    args = parser.parse_args(argv)
    try:
        path = render_png(args.html, args.png, width=args.width, height=args.height)
    except UnetsegError as exc:
        print(f"screenshot_report: {exc}", file=sys.stderr)
        return exc.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
