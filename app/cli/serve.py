"""``unetseg serve --studies DIR``: start a MONAI Label server for the project's bundles (app/label_server).

MONAI Label lives in its own environment (``.venv-label``; see docs/monai_label.md for why and how to install
it). This command runs ``<python> -m monailabel.main start_server --app app/label_server ...`` with the Python of
that environment: the current one if it has monailabel, else ``<repo>/.venv-label/bin/python``, or ``--python``.
It binds 127.0.0.1 unless ``--host`` says otherwise, and returns the server's exit code.

MONAI Label's settings (authentication among them) are read from the environment or a ``.env`` file in the
repository root, as docs/monai_label.md describes.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_DIR = REPO_ROOT / "app" / "label_server"
LABEL_VENV_PYTHON = REPO_ROOT / ".venv-label" / "bin" / "python"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve",
        help="start a MONAI Label server for the bundles (needs the .venv-label environment)",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument(
        "--studies",
        type=Path,
        required=True,
        metavar="DIR",
        help="datastore folder (images; labels in labels/final)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--models", default="all", help="comma-separated bundle names to serve, or 'all' (default)"
    )
    parser.add_argument(
        "--bundles-dir",
        type=Path,
        default=None,
        help="folder holding the bundles (default: the repository's bundles/)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="where the served bundle copies live and server-side training writes (default: app/label_server/model)",
    )
    parser.add_argument("--skip-trainers", action="store_true", help="serve inference only")
    parser.add_argument(
        "--python", type=Path, default=None, help="Python of the MONAI Label environment (default: see above)"
    )
    parser.set_defaults(run=run)
    return parser


def server_command(args: argparse.Namespace, python: Path | str) -> list[str]:
    """The ``monailabel start_server`` command line for ``args`` (pure; no checks)."""
    cmd = [
        str(python),
        "-m",
        "monailabel.main",
        "start_server",
        "--app",
        str(APP_DIR),
        "--studies",
        str(Path(args.studies).resolve()),
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--conf",
        "models",
        args.models,
    ]
    if args.bundles_dir is not None:
        cmd += ["--conf", "bundles_dir", str(Path(args.bundles_dir).resolve())]
    if args.model_dir is not None:
        cmd += ["--conf", "model_dir", str(Path(args.model_dir).resolve())]
    if args.skip_trainers:
        cmd += ["--conf", "skip_trainers", "true"]
    return cmd


def find_label_python(explicit: Path | None) -> Path | str:
    """The Python that has monailabel: ``explicit``, this one, or ``.venv-label``'s.

    Raises:
        UnetsegError: none of them has monailabel; the message says how to install it.
    """
    from app.errors import UnetsegError

    if explicit is not None:
        if not Path(explicit).is_file():
            raise UnetsegError(explicit, "no such Python interpreter (--python)")
        return explicit
    if importlib.util.find_spec("monailabel") is not None:
        return sys.executable
    if LABEL_VENV_PYTHON.is_file():
        return LABEL_VENV_PYTHON
    raise UnetsegError(
        LABEL_VENV_PYTHON,
        "MONAI Label is not installed here nor in .venv-label; install it with "
        "'python -m venv .venv-label && PIP_CONSTRAINT=constraints/label.txt .venv-label/bin/pip install -e \".[label]\"' "
        "(docs/monai_label.md)",
    )


def run(args: argparse.Namespace) -> int:
    from app.errors import InputError

    if not Path(args.studies).is_dir():
        raise InputError(args.studies, "datastore folder not found (--studies)")
    cmd = server_command(args, find_label_python(args.python))
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(
            "binding %s: the server is reachable from other machines; see docs/monai_label.md", args.host
        )
    logger.info("starting: %s", " ".join(cmd))
    print(f"MONAI Label on http://{args.host}:{args.port}/ (Ctrl+C stops it)", file=sys.stderr)
    return subprocess.call(cmd, cwd=REPO_ROOT)
