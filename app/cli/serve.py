"""``unetseg serve --studies DIR``: start a MONAI Label server for the project's bundles (app/label_server).

MONAI Label lives in its own environment (``.venv-label``; see docs/monai_label.md for why and how to install
it). This command runs ``<python> -m monailabel.main start_server --app app/label_server --uvicorn_app
app.label_server.asgi:app ...`` with the Python of that environment: the current one if it has monailabel, else
``<repo>/.venv-label/bin/python``, or ``--python``. It binds 127.0.0.1 unless ``--host`` says otherwise.

Safe by default (:mod:`app.label_server.guard`): browser origins other than the server's own are refused
(``--allow-origin`` adds one), and every request but a GET needs the server's token, which lives in
``UNETSEG_SERVE_TOKEN`` or a file readable by its owner only (``--token-file``, default
``<model dir>/server_token``, created on first start). The token is never printed; this command prints where
it is and how to send it. ``SIGINT``, ``SIGTERM`` and ``SIGHUP`` stop the server and its training processes
(:mod:`app.label_server.process`); the exit code is then ``128 + signal``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from pathlib import Path

from app.cli.exit_codes import codes, epilog

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_DIR = REPO_ROOT / "app" / "label_server"
LABEL_VENV_PYTHON = REPO_ROOT / ".venv-label" / "bin" / "python"
#: the ASGI app MONAI Label's uvicorn serves: its own app behind the request guard
GUARDED_APP = "app.label_server.asgi:app"


#: exit codes of ``unetseg serve`` (``--help`` epilog, README; printed with their meaning when non-zero)
EXIT_CODES = codes(
    {
        1: "the server could not be started (the message says why), or it exited with an error",
        129: "stopped by SIGHUP",
        143: "stopped by SIGTERM",
        130: "stopped by Ctrl-C (SIGINT)",
    }
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve",
        epilog=epilog(EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin (scheme://host[:port]) allowed to call the server, besides its own; repeatable",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients may use in the Host header, besides loopback and --host; repeatable",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="file holding the server token (default: <model dir>/server_token, created if missing; "
        "UNETSEG_SERVE_TOKEN overrides it)",
    )
    parser.add_argument(
        "--python", type=Path, default=None, help="Python of the MONAI Label environment (default: see above)"
    )
    parser.set_defaults(run=run)
    return parser


def model_dir(args: argparse.Namespace) -> Path:
    """Where the served copies live (``--model-dir``, default ``app/label_server/model``)."""
    return Path(args.model_dir).resolve() if args.model_dir is not None else APP_DIR / "model"


def token_file(args: argparse.Namespace) -> Path:
    """The token file (``--token-file``, default ``<model dir>/server_token``)."""
    from app.label_server.server_token import TOKEN_FILE_NAME

    return (
        Path(args.token_file).resolve() if args.token_file is not None else model_dir(args) / TOKEN_FILE_NAME
    )


def server_command(args: argparse.Namespace, python: Path | str) -> list[str]:
    """The ``monailabel start_server`` command line for ``args`` (pure; no checks). It names the token *file*,
    never the token: a command line is visible to every user of the machine."""
    cmd = [
        str(python),
        "-m",
        "monailabel.main",
        "start_server",
        "--app",
        str(APP_DIR),
        "--uvicorn_app",
        GUARDED_APP,
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
    cmd += ["--conf", "token_file", str(token_file(args))]
    if args.allow_origin:
        cmd += ["--conf", "allow_origins", ",".join(args.allow_origin)]
    hosts = [*args.allow_host, *([args.host] if args.host not in ("0.0.0.0", "::") else [])]
    cmd += ["--conf", "allow_hosts", ",".join(hosts)]
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
    from app.errors import InputError, UnetsegError
    from app.label_server.guard import own_origins, settings_from
    from app.label_server.process import run_supervised
    from app.label_server.server_token import TOKEN_ENV, ensure_token

    if not Path(args.studies).is_dir():
        raise InputError(args.studies, "datastore folder not found (--studies)")
    try:
        guard = settings_from(token=None, port=args.port, origins=args.allow_origin, hosts=args.allow_host)
    except ValueError as exc:
        raise UnetsegError(None, f"--allow-origin: {exc}") from None
    cmd = server_command(args, find_label_python(args.python))
    _, where = ensure_token(token_file(args), os.environ)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(
            "binding %s: the server is reachable from other machines; see docs/monai_label.md", args.host
        )
    logger.info("starting: %s", " ".join(cmd))
    url = f"http://{args.host}:{args.port}"
    from_env = where == f"${TOKEN_ENV}"
    own = [o for o in own_origins(args.port) if o.startswith("http://")]
    print(
        f"MONAI Label on {url}/ (Ctrl+C stops it)\n"
        "  Requests that change anything (every method but GET: training, inference, label and image uploads,\n"
        f"  deletes, model uploads) need the server token, which is {where if from_env else 'in ' + where}:\n"
        f'    curl -H "Authorization: Bearer {where if from_env else "$(cat " + where + ")"}" '
        f"-X POST {url}/train/<model> ...\n"
        "  MONAI Label clients (3D Slicer): turn authentication on, any user name, the token as the password.\n"
        f"  Browser origins allowed: {', '.join(own + sorted(guard.origins - set(own_origins(args.port))))}"
        " (--allow-origin adds one).",
        file=sys.stderr,
    )
    return run_supervised(cmd, cwd=REPO_ROOT)
