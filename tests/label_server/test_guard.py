"""The request guard in front of MONAI Label (app/label_server/guard.py), driven as an ASGI app with a stub inner
app that answers like MONAI Label (CORS ``*``), and the server token file (app/label_server/server_token.py).

Main environment, no monailabel or Starlette: the guard is plain ASGI. The same checks against the real server
are in ``test_server_security.py`` (slow, label environment).
"""

from __future__ import annotations

import asyncio
import json
import stat
import urllib.parse

import pytest

from app.errors import UnetsegError
from app.label_server.guard import (
    RequestGuard,
    guard_active,
    normalise_origin,
    settings_from,
)
from app.label_server.server_token import TOKEN_ENV, ensure_token, read_token

PORT = 8123
TOKEN = "t0ken-" + "x" * 30
OWN = f"http://127.0.0.1:{PORT}"
FOREIGN = "https://evil.example"


def _guard(token: str | None = TOKEN, **kwargs) -> tuple[RequestGuard, list[dict]]:
    reached: list[dict] = []

    async def monai_label(scope, receive, send):  # answers like MONAI Label's CORSMiddleware with "*"
        reached.append(scope)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"access-control-allow-origin", b"*")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    return RequestGuard(monai_label, settings_from(token=token, port=PORT, **kwargs)), reached


def _call(guard, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""):
    """``(status, headers, json body)`` of one request through ``guard``."""
    all_headers = {"host": f"127.0.0.1:{PORT}", **(headers or {})}
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in all_headers.items()],
    }
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    start = sent[0]
    reply = b"".join(m.get("body", b"") for m in sent[1:])
    out_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], out_headers, json.loads(reply) if reply else None


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_foreign_origin_is_refused_without_cors_headers():
    guard, reached = _guard()
    for method, path in [("GET", "/info/"), ("POST", "/train/hippo"), ("GET", "/datastore/image")]:
        status, headers, body = _call(guard, method, path, {"origin": FOREIGN, **_bearer()})
        assert status == 403 and "origin" in body["detail"]
        assert not any(h.startswith("access-control-") for h in headers)
    assert reached == []


def test_a_preflight_for_a_mutating_call_is_refused_for_a_foreign_origin_and_answered_for_the_own_one():
    guard, reached = _guard()
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
    status, headers, _ = _call(guard, "OPTIONS", "/train/hippo", {"origin": FOREIGN, **preflight})
    assert status == 403 and "access-control-allow-origin" not in headers
    status, headers, _ = _call(guard, "OPTIONS", "/train/hippo", {"origin": OWN, **preflight})
    assert status == 204 and headers["access-control-allow-origin"] == OWN
    assert "authorization" in headers["access-control-allow-headers"]
    assert reached == []  # preflights never reach MONAI Label


@pytest.mark.parametrize("origin", [None, OWN, f"http://localhost:{PORT}", "http://viewer.local:3000"])
def test_no_response_says_star_and_an_allowed_origin_is_named(origin):
    guard, reached = _guard(origins=["http://viewer.local:3000"])
    status, headers, _ = _call(guard, "GET", "/info/", {"origin": origin} if origin else {})
    assert status == 200 and len(reached) == 1
    assert (
        headers.get("access-control-allow-origin") == origin
    )  # None without an Origin: no CORS header at all


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/train/hippocampus_mri_segmentation"),
        ("DELETE", "/train/"),
        ("PUT", "/datastore/label"),
        ("PUT", "/datastore/"),
        ("DELETE", "/datastore/label"),
        ("PUT", "/model/hippocampus_mri_segmentation"),
        ("DELETE", "/model/hippocampus_mri_segmentation"),
        ("POST", "/infer/hippocampus_mri_segmentation"),
        ("POST", "/batch/infer/hippocampus_mri_segmentation"),
        ("PUT", "/session/"),
        ("POST", "/reload"),
    ],
)
def test_every_request_but_a_get_needs_the_token(method, path):
    guard, reached = _guard()
    status, headers, body = _call(guard, method, path)
    assert status == 401 and headers["www-authenticate"] == "Bearer" and "token" in body["detail"]
    assert _call(guard, method, path, _bearer("wrong-" + TOKEN))[0] == 401
    assert _call(guard, method, path, {"authorization": f"Basic {TOKEN}"})[0] == 401
    assert reached == []
    assert _call(guard, method, path, _bearer())[0] == 200
    assert _call(guard, method, path, {"authorization": f"bearer {TOKEN}"})[0] == 200  # MONAI Label's client
    assert len(reached) == 2


def test_gets_need_no_token_and_a_server_without_token_is_read_only():
    guard, reached = _guard(token=None)
    assert _call(guard, "GET", "/info/")[0] == 200
    status, _, body = _call(guard, "POST", "/train/hippo", _bearer())
    assert status == 403 and "read-only" in body["detail"]
    assert len(reached) == 1


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        (f"127.0.0.1:{PORT}", True),
        (f"localhost:{PORT}", True),
        (f"[::1]:{PORT}", True),
        (f"labserver.hospital.example:{PORT}", True),  # allowed by name
        (f"evil.example:{PORT}", False),  # DNS rebinding: a page's own name resolved to 127.0.0.1
        ("127.0.0.2", False),
    ],
)
def test_the_host_header_must_name_this_server(host, allowed):
    guard, reached = _guard(hosts=["labserver.hospital.example"])
    status, _, _ = _call(guard, "GET", "/datastore/image", {"host": host})
    assert (status == 200) is allowed and bool(reached) is allowed


def test_monai_labels_token_protocol_takes_the_token_as_password():
    guard, reached = _guard()
    status, _, body = _call(guard, "GET", "/auth/")
    assert status == 200 and body["enabled"] is True
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    good = urllib.parse.urlencode({"username": "anyone", "password": TOKEN}).encode()
    status, _, body = _call(guard, "POST", "/auth/token", form, good)
    assert status == 200 and body == {"access_token": TOKEN, "token_type": "bearer"}
    bad = urllib.parse.urlencode({"username": "anyone", "password": "guess"}).encode()
    assert _call(guard, "POST", "/auth/token", form, bad)[0] == 401
    assert _call(guard, "GET", "/auth/token/valid", {"authorization": f"bearer {TOKEN}"})[0] == 200
    assert _call(guard, "GET", "/auth/token/valid")[0] == 401
    assert reached == []


def test_origins_are_normalised_and_star_is_refused():
    assert normalise_origin("HTTP://Viewer.Local:80/") == "http://viewer.local"
    assert normalise_origin("https://[::1]:8443") == "https://[::1]:8443"
    for bad in ("*", "null", "file:///x", "http://a/path", "viewer.local"):
        with pytest.raises(ValueError):
            settings_from(token=None, port=PORT, origins=[bad])
    assert settings_from(token=None, port=PORT, hosts=["0.0.0.0"]).hosts == {"127.0.0.1", "localhost", "::1"}


def test_the_lifespan_through_the_guard_marks_it_active():
    guard, reached = _guard()

    async def nothing():
        return {"type": "lifespan.startup"}

    async def ignore(message):
        return None

    asyncio.run(guard({"type": "lifespan"}, nothing, ignore))
    assert guard_active() and reached[0]["type"] == "lifespan"


def test_the_token_file_is_made_once_private_and_the_environment_wins(tmp_path):
    path = tmp_path / "model" / "server_token"
    assert read_token(path, {}) is None
    token, where = ensure_token(path, {})
    assert where == str(path) and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_token(path, {}) == (token, str(path))  # reused at the next start
    assert read_token(path, {}) == token
    chosen = "operator-secret-123456"
    assert ensure_token(path, {TOKEN_ENV: chosen}) == (chosen, f"${TOKEN_ENV}")
    with pytest.raises(UnetsegError, match="at least 16"):
        read_token(path, {TOKEN_ENV: "short"})
