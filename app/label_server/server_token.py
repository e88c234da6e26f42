"""The server's token: the secret a request must carry to change anything (see :mod:`app.label_server.guard`).

Where it comes from, first match wins:

1. ``UNETSEG_SERVE_TOKEN`` in the environment (an operator-set secret, at least :data:`MIN_LENGTH` characters).
2. the token file (``unetseg serve --token-file``, default ``<model_dir>/server_token``): read when it exists,
   otherwise created with a new random token (``secrets.token_urlsafe(32)``), readable by its owner only.

The token is a secret: it is never printed or logged. ``unetseg serve`` prints where it is (the file, or the
variable) and how to send it; MONAI Label's command line, which ``ps`` shows, carries only the file's path.
Delete the file to get a new token at the next start.

Only the standard library is used, so the main environment tests it without monailabel.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from app.errors import UnetsegError

logger = logging.getLogger(__name__)

TOKEN_ENV = "UNETSEG_SERVE_TOKEN"
#: shortest token accepted from the environment or a file (a generated one has 43 characters)
MIN_LENGTH = 16
TOKEN_FILE_NAME = "server_token"


def _checked(token: str, where: str | Path) -> str:
    token = token.strip()
    if len(token) < MIN_LENGTH or any(c.isspace() for c in token):
        raise UnetsegError(
            where if isinstance(where, Path) else None,
            f"the server token from {where} must be at least {MIN_LENGTH} characters without spaces",
        )
    return token


def read_token(token_file: str | Path | None, environ: Mapping[str, str]) -> str | None:
    """The token from the environment or ``token_file``; ``None`` when neither has one (a read-only server).

    Raises:
        UnetsegError: a token shorter than :data:`MIN_LENGTH` or with spaces.
    """
    if environ.get(TOKEN_ENV):
        return _checked(environ[TOKEN_ENV], f"${TOKEN_ENV}")
    if token_file and Path(token_file).is_file():
        return _checked(Path(token_file).read_text(encoding="utf-8"), Path(token_file))
    return None


def ensure_token(token_file: Path, environ: Mapping[str, str]) -> tuple[str, str]:
    """``(token, where)``: from the environment, the existing ``token_file``, or a new one written there.

    ``where`` says where the user finds it (``$UNETSEG_SERVE_TOKEN`` or the file's path), never the token.

    Raises:
        UnetsegError: the token is too short, or the file cannot be written.
    """
    existing = read_token(token_file, environ)
    if existing is not None:
        where = f"${TOKEN_ENV}" if environ.get(TOKEN_ENV) else str(token_file)
        if where == str(token_file) and os.stat(token_file).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning("the token file %s is readable by other users; chmod 600 it", token_file)
        return existing, where
    token = secrets.token_urlsafe(32)
    try:
        token_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
    except OSError as exc:
        raise UnetsegError(token_file, f"cannot write the server token file: {exc.strerror or exc}") from exc
    logger.info("new server token written to %s", token_file)
    return token, str(token_file)


__all__ = ["MIN_LENGTH", "TOKEN_ENV", "TOKEN_FILE_NAME", "ensure_token", "read_token"]
