"""Small HTTP and socket helpers for the tests that start real servers (MONAI Label, Ray on loopback).

Any test module can import it (``tests/`` is on ``sys.path`` through the root conftest)::

    from http_helpers import free_port, multipart, request
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(
    url: str, *, method: str = "GET", body: bytes | None = None, headers=None, timeout: float
) -> tuple[int, dict[str, str], bytes]:
    """``(status, headers with lower-case names, body)`` of one request; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def multipart(field: str, filename: str, payload: bytes) -> tuple[bytes, dict[str, str]]:
    """A ``multipart/form-data`` body with one file ``field`` and the ``Content-Type`` header that goes with it."""
    boundary = "unetsegboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
