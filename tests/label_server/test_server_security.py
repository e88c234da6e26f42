"""The real server is safe by default: no web page can drive it, nothing changes without the token, and a signal
to ``unetseg serve`` leaves no orphan on the port.

``unetseg serve`` (label environment, ``.venv-label``) on a free loopback port with one real hippocampus case,
exactly as a user starts it (a token file is made in the model folder). Checked over HTTP:

* a request with another site's ``Origin`` is refused (``403``, no ``Access-Control-Allow-Origin``), and so is
  the CORS preflight of a training request from it; the server's own origin gets its preflight answered and is
  named (never ``*``);
* a ``Host`` of another name (DNS rebinding) is refused;
* an unauthenticated training request, label upload, label delete and model upload are refused with ``401`` and
  change nothing; with the token, the label upload is stored and training starts (and is stopped);
* MONAI Label's own client logs in with the token as its password and saves a label;
* ``SIGTERM`` to ``unetseg serve`` stops the ``monailabel start_server`` child: the wrapper exits with 143, the
  child's process is gone and the port is free.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from http_helpers import free_port, multipart, request

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LABEL_PYTHON = Path(os.environ.get("UNETSEG_LABEL_PYTHON", ROOT / ".venv-label" / "bin" / "python"))
MODEL = "hippocampus_mri_segmentation"
CASE = "hippocampus_001"
FOREIGN = "https://evil.example"
STARTUP_S = 240


_request = functools.partial(request, timeout=120)


def _multipart(field: str, path: Path) -> tuple[bytes, dict]:
    return multipart(field, path.name, path.read_bytes())


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _port_free(port: int) -> bool:
    """Whether a new server could listen on ``port``: nothing accepts connections there, and a bind with
    ``SO_REUSEADDR`` (as uvicorn binds) succeeds; connections of the old server lingering in TIME_WAIT don't count."""
    with socket.socket() as probe:
        probe.settimeout(2)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
    return True


@contextmanager
def _serve(work: Path, shared_data: Path):
    """``unetseg serve`` running: ``{"url", "port", "proc", "token", "studies", "log"}``; stopped at the end."""
    if not LABEL_PYTHON.is_file():
        pytest.skip(f"MONAI Label environment not found at {LABEL_PYTHON} (see docs/monai_label.md)")
    studies = work / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    source = shared_data / "msd-hippocampus"
    shutil.copy(source / "imagesTr" / f"{CASE}.nii.gz", studies)
    shutil.copy(source / "labelsTr" / f"{CASE}.nii.gz", studies / "labels" / "final")
    port = free_port()
    log = work / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "UNETSEG_SERVE_TOKEN"}
    cmd = [str(LABEL_PYTHON), "-m", "app.cli.main", "serve", "--studies", str(studies), "--port", str(port)]
    cmd += ["--model-dir", str(work / "model"), "--models", MODEL, "--python", str(LABEL_PYTHON)]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if _request(f"{url}/info/", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"no /info/ after {STARTUP_S} s:\n{log.read_text()[-3000:]}"
            time.sleep(1)
        token = (work / "model" / "server_token").read_text().strip()
        yield {"url": url, "port": port, "proc": proc, "token": token, "studies": studies, "log": log}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(shared_data, tmp_path_factory):
    with _serve(tmp_path_factory.mktemp("secure_server"), shared_data) as running:
        yield running


def _auth(server, headers: dict | None = None) -> dict:
    return {**(headers or {}), "Authorization": f"Bearer {server['token']}"}


def test_serve_prints_where_the_token_is_but_never_the_token(server):
    printed = server["log"].read_text()
    assert "Authorization: Bearer $(cat " in printed and str(Path("model") / "server_token") in printed
    assert server["token"] not in printed


def test_a_foreign_origin_is_refused_without_cors_headers(server):
    for method, path in [
        ("GET", "/info/"),
        ("GET", f"/datastore/image?image={CASE}"),
        ("POST", f"/train/{MODEL}"),
    ]:
        status, headers, body = _request(
            server["url"] + path,
            method=method,
            body=b"{}" if method == "POST" else None,
            headers=_auth(server, {"Origin": FOREIGN, "Content-Type": "application/json"}),
        )
        assert status == 403, (path, body[:300])
        assert "access-control-allow-origin" not in headers


def test_a_cors_preflight_for_training_is_refused_for_a_foreign_origin_only(server):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    status, headers, _ = _request(
        f"{server['url']}/train/{MODEL}", method="OPTIONS", headers={"Origin": FOREIGN, **preflight}
    )
    assert status == 403 and "access-control-allow-origin" not in headers
    own = f"http://127.0.0.1:{server['port']}"
    status, headers, _ = _request(
        f"{server['url']}/train/{MODEL}", method="OPTIONS", headers={"Origin": own, **preflight}
    )
    assert status == 204 and headers["access-control-allow-origin"] == own
    status, headers, _ = _request(f"{server['url']}/info/", headers={"Origin": own})
    assert status == 200 and headers["access-control-allow-origin"] == own  # never "*"
    status, headers, _ = _request(f"{server['url']}/info/")
    assert status == 200 and "access-control-allow-origin" not in headers


def test_a_host_of_another_name_is_refused(server):
    status, _, body = _request(f"{server['url']}/info/", headers={"Host": f"evil.example:{server['port']}"})
    assert status == 403 and b"host" in body


def test_unauthenticated_changes_are_refused_and_change_nothing(server, tmp_path):
    label = server["studies"] / "labels" / "final" / f"{CASE}.nii.gz"
    before = label.read_bytes()
    upload, form = _multipart("label", label)
    weights, weights_form = _multipart("file", label)  # any bytes: it must not even be looked at
    attempts = [
        ("POST", f"/train/{MODEL}", b'{"max_epochs": 1}', {"Content-Type": "application/json"}),
        ("PUT", f"/datastore/label?image={CASE}&tag=final", upload, form),
        ("DELETE", f"/datastore/label?id={CASE}&tag=final", None, {}),
        ("PUT", f"/model/{MODEL}", weights, weights_form),
        ("DELETE", f"/model/{MODEL}", None, {}),
        ("DELETE", "/train/", None, {}),
    ]
    for method, path, body, headers in attempts:
        for auth in ({}, {"Authorization": "Bearer not-the-token-0123456789"}):
            status, reply_headers, reply = _request(
                server["url"] + path, method=method, body=body, headers={**headers, **auth}
            )
            assert status == 401, (method, path, status, reply[:300])
            assert reply_headers.get("www-authenticate") == "Bearer"
    assert label.read_bytes() == before
    status, _, body = _request(f"{server['url']}/train/")
    assert status == 404 or json.loads(body).get("status") != "RUNNING", body[:300]  # 404: no task ever ran


def test_authenticated_label_upload_and_training_work(server):
    label = server["studies"] / "labels" / "final" / f"{CASE}.nii.gz"
    body, form = _multipart("label", label)
    status, _, reply = _request(
        f"{server['url']}/datastore/label?image={CASE}&tag=reviewed",
        method="PUT",
        body=body,
        headers=_auth(server, form),
    )
    assert status == 200, reply[:300]
    assert (server["studies"] / "labels" / "reviewed" / f"{CASE}.nii.gz").read_bytes() == label.read_bytes()

    status, _, reply = _request(
        f"{server['url']}/train/{MODEL}",
        method="POST",
        body=b'{"max_epochs": 1, "val_split": 0.0}',
        headers=_auth(server, {"Content-Type": "application/json"}),
    )
    assert status == 200, reply[:300]
    status, _, reply = _request(f"{server['url']}/train/")
    assert json.loads(reply).get("status") in ("SUBMITTED", "RUNNING", "DONE"), reply[:300]  # accepted
    status, _, reply = _request(f"{server['url']}/train/", method="DELETE", headers=_auth(server))
    assert status == 200, reply[:300]


MONAI_LABEL_CLIENT = r"""
import sys
from monailabel.client import MONAILabelClient
url, token, image, label = sys.argv[1:]
client = MONAILabelClient(url)
assert client.auth_enabled()
client.update_auth(client.auth_token("any-user", token))
assert client.auth_valid_token()
print(client.save_label(image, label, tag="client"))
"""


def test_monai_labels_own_client_logs_in_with_the_token_as_password(server):
    label = server["studies"] / "labels" / "final" / f"{CASE}.nii.gz"
    result = subprocess.run(
        [str(LABEL_PYTHON), "-c", MONAI_LABEL_CLIENT, server["url"], server["token"], CASE, str(label)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (server["studies"] / "labels" / "client" / f"{CASE}.nii.gz").is_file()
    wrong = subprocess.run(
        [str(LABEL_PYTHON), "-c", MONAI_LABEL_CLIENT, server["url"], "guess-" + "x" * 20, CASE, str(label)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode != 0


def test_sigterm_to_unetseg_serve_stops_the_server_it_started(shared_data, tmp_path):
    with _serve(tmp_path, shared_data) as running:
        wrapper = running["proc"]
        children = _children(wrapper.pid)
        assert len(children) == 1, children
        child = children[0]
        assert "monailabel.main" in Path(f"/proc/{child}/cmdline").read_text()
        assert not _port_free(running["port"])
        os.kill(wrapper.pid, signal.SIGTERM)  # the wrapper alone, as `kill PID` does
        assert wrapper.wait(timeout=90) == 143
        deadline = time.monotonic() + 30
        while (_alive(child) or not _port_free(running["port"])) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _alive(child), "monailabel start_server outlived unetseg serve"
        assert _port_free(running["port"]), "the port is still taken"
