"""The ``unetseg`` command line: parse, configure logging, call one stage function, map errors to exit codes.

A non-zero exit code is printed with its meaning (the command's ``EXIT_CODES``, :mod:`app.cli.exit_codes`).

Each sub-command lives in its own module ``app.cli.<name>`` with ``add_parser(subparsers)`` and
``run(args) -> int``. Modules are imported when the parser is built, so they must keep heavy imports
(torch, MONAI, pydicom) inside ``run``: ``unetseg --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import warnings

from app import __version__
from app.cli.exit_codes import COMMON, meaning
from app.errors import UnetsegError

#: sub-command modules, in the order ``--help`` lists them
COMMANDS = ("infer", "report", "evaluate", "convert", "demo", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unetseg",
        description="MONAI U-Net segmentation for DICOM, NIfTI and 2D images, with DICOM SEG output and reports.",
    )
    parser.add_argument("--version", action="version", version=f"unetseg {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"app.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"app.cli.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


#: third-party messages that say nothing actionable to a CLI user (a GPU decoder absent on CPU machines);
#: still shown with -v
_QUIET = (("monai.data.nvimgcodec_pydicom_plugin", "NvImgCodecPydicomReader"),)


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # The console shows `level` and above whatever a library logger is set to (a batch's run log lowers the
    # `app` logger to INFO for its file; those records must not reach the console unasked).
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
    if verbosity <= 0:
        for logger_name, warning_text in _QUIET:
            logging.getLogger(logger_name).setLevel(logging.ERROR)
            warnings.filterwarnings("ignore", message=f".*{warning_text}.*")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    configure_logging(args.verbose)
    code = _run(args)
    if code != 0:
        table = getattr(sys.modules.get(f"app.cli.{args.command}"), "EXIT_CODES", COMMON)
        print(f"unetseg {args.command}: exit code {code}: {meaning(table, code)}", file=sys.stderr)
    return code


def _run(args: argparse.Namespace) -> int:
    """Run the sub-command; a user error or Ctrl-C becomes its exit code."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.run(args) or 0)
    except UnetsegError as exc:
        print(f"unetseg {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"unetseg {args.command}: interrupted; finished work is kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


#: exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, the shell's convention)
EXIT_INTERRUPTED = 130


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (``kill``, a scheduler's time limit) stops a run the way Ctrl-C does: reports written, no
    half-written outputs, exit code 130."""
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
