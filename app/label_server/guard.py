"""The request guard in front of MONAI Label: no web page can drive the server, nothing changes without the token.

MONAI Label 0.8.5 with authentication off answers every origin (CORS ``*``) and lets anyone who can connect
train, replace weights, save and delete labels. Its own authentication needs an OpenID Connect server (Keycloak)
reachable from the server, which a clinical workstation usually lacks, and its CORS setting
(``MONAI_LABEL_CORS_ORIGINS``) stops ``start_server`` from starting at all. So this app puts a small ASGI
middleware in front of MONAI Label's FastAPI app (``app.label_server.asgi:app``, started with
``monailabel start_server --uvicorn_app``, an option of MONAI Label's own command). Per HTTP request, in order:

1. **Host** (DNS rebinding): the ``Host`` header must name this machine's loopback (``127.0.0.1``,
   ``localhost``, ``[::1]``) or a host the operator allowed (``--conf allow_hosts``; ``unetseg serve`` adds its
   ``--host``). A page whose own name was made to resolve to 127.0.0.1 sends its own name and is refused
   (``403``), so it cannot even read ``/info`` or download images.
2. **Origin** (CORS): a request that carries an ``Origin`` header (every cross-site ``fetch``, and browsers'
   non-GET requests) is refused with ``403`` and no ``Access-Control-Allow-Origin`` unless the origin is the
   server's own (``http://127.0.0.1:PORT``, ``http://localhost:PORT``, ``http://[::1]:PORT``) or one the operator
   allowed (``--conf allow_origins``). Preflights of allowed origins are answered here; MONAI Label's ``*`` headers
   are removed from every response, so no response ever says ``*``.
3. **Token**: every request whose method is not ``GET``, ``HEAD`` or ``OPTIONS`` (training and stopping it,
   datastore uploads, label saves and deletes, model uploads and deletes, sessions, scoring, batch inference,
   and ``/infer`` too, which saves its result into the datastore when asked to) needs
   ``Authorization: Bearer <token>``. Missing or wrong: ``401``. A server started without a token is read-only
   (``403``). Tokens are compared in constant time and never logged.

MONAI Label's clients (3D Slicer's module, ``monailabel.client``) already speak a token protocol: they ask
``GET /auth/`` whether authentication is on, post a user name and password to ``/auth/token`` and send the
answer as ``Authorization: bearer ...``. The guard answers those endpoints itself: any user name, the token as
the password. So a Slicer user enters the token once, as a password.

Only the standard library is used, so the main environment tests the guard without monailabel or Starlette.
"""

from __future__ import annotations

import hmac
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: methods that never need the token (MONAI Label changes no state on them)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: host names of this machine's loopback, always allowed in ``Host``
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: largest ``/auth/token`` form body read (a user name and a token)
MAX_AUTH_BODY = 16 * 1024
#: set when an HTTP server's lifespan went through a guard; checked by the MONAI Label app at start-up
_ACTIVE = {"guarded": False}


@dataclass(frozen=True)
class GuardSettings:
    """What the guard allows.

    Attributes:
        token: the secret that non-GET requests must carry; ``None``: the server is read-only.
        origins: browser origins allowed, as ``scheme://host[:port]`` in lower case (see :func:`normalise_origin`).
        hosts: host names allowed in the ``Host`` header (lower case, IPv6 without brackets).
    """

    token: str | None = field(repr=False)
    origins: frozenset[str]
    hosts: frozenset[str]


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, default ports dropped, as browsers send it in ``Origin``.

    Raises:
        ValueError: not an ``http``/``https`` origin (a path, a query or no host).
    """
    parsed = urllib.parse.urlsplit(origin.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/"):
        raise ValueError(f"not an http(s) origin: {origin!r} (expected scheme://host[:port])")
    if parsed.query or parsed.fragment or parsed.username:
        raise ValueError(f"not an http(s) origin: {origin!r} (expected scheme://host[:port])")
    host = parsed.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[parsed.scheme]
    port = parsed.port
    return f"{parsed.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def own_origins(port: int) -> list[str]:
    """The server's own origins (its Swagger page and OHIF viewer are served from them) on ``port``."""
    hosts = ("127.0.0.1", "localhost", "[::1]")
    return [normalise_origin(f"{scheme}://{host}:{port}") for scheme in ("http", "https") for host in hosts]


def settings_from(
    *, token: str | None, port: int, origins: Iterable[str] = (), hosts: Iterable[str] = ()
) -> GuardSettings:
    """Guard settings for a server on ``port``: its own origins and loopback names plus those given.

    Raises:
        ValueError: an origin that is not ``scheme://host[:port]``, or ``*``.
    """
    allowed = set(own_origins(port))
    for origin in origins:
        if origin.strip() == "*":
            raise ValueError("'*' is not accepted as an allowed origin: name each origin")
        if origin.strip():
            allowed.add(normalise_origin(origin))
    names = {h.lower() for h in LOOPBACK_HOSTS}
    names.update(h.strip().lower().strip("[]") for h in hosts if h.strip())
    names.discard("0.0.0.0")  # a wildcard bind address is no host name
    names.discard("::")
    return GuardSettings(token=token or None, origins=frozenset(allowed), hosts=frozenset(names))


def split_list(value: str | None) -> list[str]:
    """Comma-separated ``--conf`` value -> items (empty items dropped)."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def guard_active() -> bool:
    """Whether an HTTP server started through a :class:`RequestGuard` in this process."""
    return _ACTIVE["guarded"]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _host_name(host: str) -> str:
    """``Host`` header -> lower-case host name without port (IPv6 without brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bearer(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, credentials = value.strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def _matches(given: str | None, token: str | None) -> bool:
    if not given or not token:
        return False
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


class RequestGuard:
    """ASGI middleware: the Host, Origin and token checks of the module docstring, in front of ``app``."""

    def __init__(self, app: ASGIApp, settings: GuardSettings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            _ACTIVE["guarded"] = True
            await self.app(scope, receive, send)
            return
        if kind != "http":  # MONAI Label has no websocket endpoint
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        method = scope.get("method", "GET").upper()
        path = scope.get("path", "")
        host = _header(scope, b"host")
        if host is not None and _host_name(host) not in self.settings.hosts:
            await self._refuse(send, scope, 403, f"host {host!r} is not this server's (see allow_hosts)")
            return
        origin = _header(scope, b"origin")
        allowed_origin = None
        if origin is not None:
            try:
                allowed_origin = normalise_origin(origin)
            except ValueError:
                allowed_origin = None
            if allowed_origin not in self.settings.origins:
                await self._refuse(send, scope, 403, f"origin {origin!r} is not allowed (see allow_origins)")
                return
        if method == "OPTIONS" and origin is not None and _header(scope, b"access-control-request-method"):
            await self._preflight(send, scope, origin)
            return
        if path.rstrip("/") in ("/auth", "/auth/token", "/auth/token/valid"):
            await self._auth(scope, receive, send, method, path.rstrip("/"), origin)
            return
        if method not in SAFE_METHODS:
            if self.settings.token is None:
                await self._refuse(
                    send, scope, 403, "this server was started without a token: it is read-only"
                )
                return
            if not _matches(_bearer(scope), self.settings.token):
                await self._refuse(
                    send,
                    scope,
                    401,
                    "this request changes the server's state: it needs 'Authorization: Bearer <token>'",
                )
                return
        await self.app(scope, receive, _cors_send(send, origin))

    async def _refuse(self, send: Send, scope: Scope, status: int, detail: str) -> None:
        logger.warning("refused %s %s (%d): %s", scope.get("method"), scope.get("path"), status, detail)
        extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
        await _json(send, status, {"detail": detail}, extra)

    async def _preflight(self, send: Send, scope: Scope, origin: str) -> None:
        requested = _header(scope, b"access-control-request-headers") or ""
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", b"GET, HEAD, POST, PUT, DELETE, OPTIONS"),
            (b"access-control-allow-headers", requested.encode("latin-1") or b"authorization, content-type"),
            (b"access-control-max-age", b"600"),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _auth(
        self, scope: Scope, receive: Receive, send: Send, method: str, path: str, origin: str | None
    ) -> None:
        """MONAI Label's token protocol (``/auth/``, ``/auth/token``, ``/auth/token/valid``), answered here."""
        cors = (
            [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
            if origin
            else []
        )
        if path == "/auth" and method in ("GET", "HEAD"):
            body = {"enabled": True, "client_id": "unetseg", "realm": ""}
            await _json(send, 200, body, cors)
        elif path == "/auth/token" and method == "POST":
            form = await _read_form(receive)
            if form is None or not _matches(form.get("password"), self.settings.token):
                await self._refuse(send, scope, 401, "wrong token (send the server's token as the password)")
                return
            await _json(send, 200, {"access_token": self.settings.token, "token_type": "bearer"}, cors)
        elif path == "/auth/token/valid" and method in ("GET", "HEAD"):
            if not _matches(_bearer(scope), self.settings.token):
                await self._refuse(send, scope, 401, "no valid token")
                return
            user = {"username": "token", "email": "", "name": "token holder", "roles": ["monailabel-admin"]}
            await _json(send, 200, user, cors)
        else:
            await _json(send, 405, {"detail": f"{method} not allowed on {path}"}, cors)


def _cors_send(send: Send, origin: str | None) -> Send:
    """``send`` that drops MONAI Label's ``Access-Control-*`` headers and, for an allowed origin, names it."""

    async def wrapped(message: Message) -> None:
        if message.get("type") == "http.response.start":
            headers = [
                (k, v) for k, v in message.get("headers", []) if not k.lower().startswith(b"access-control-")
            ]
            if origin is not None:
                headers = [(k, v) for k, v in headers if k.lower() != b"vary"]
                headers += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def _json(
    send: Send, status: int, body: Mapping, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": payload})


async def _read_form(receive: Receive) -> dict[str, str] | None:
    """An ``application/x-www-form-urlencoded`` body (at most :data:`MAX_AUTH_BODY` bytes) as a dict."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_AUTH_BODY:
            return None
        if not message.get("more_body"):
            break
    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


__all__ = [
    "GuardSettings",
    "RequestGuard",
    "guard_active",
    "normalise_origin",
    "own_origins",
    "settings_from",
    "split_list",
]
