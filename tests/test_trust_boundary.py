"""The trust boundary both processes keep, whoever is logged in: only their own hosts, bodies
within each route's limit, JSON routes take JSON only, and an engine that serves its
orchestrator only."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import httpx
import pytest

from engine.contract.generation import MAX_GENERATE_BYTES
from engine.contract.schemas import (
    ENGINE_TOKEN_HEADER,
    MAX_TRAINING_IMAGE_BYTES,
    MAX_TRAINING_IMAGES,
)
from tests.engine_process import ROOT, EngineProcess, OrchestratorProcess
from tests.helpers import ALICE, FAST, assert_error


@pytest.fixture(scope="module")
def app(tiny_models, tmp_path_factory):
    proc = OrchestratorProcess(str(tiny_models["sd"].folder), tmp_path_factory.mktemp("trust"))
    proc.start_ready()
    yield proc
    proc.stop()


@pytest.fixture(params=["engine", "orchestrator"])
def either(request, app):
    """Each process, with a client that passes its own checks otherwise."""
    if request.param == "engine":
        with app.engine_client() as c:
            c.params = c.params.merge(ALICE)
            yield c
    else:
        with app.client() as c:
            yield c


def test_a_host_it_does_not_serve_is_refused(either):
    r = either.get("/loras", headers={"host": "evil.example"})
    assert "evil.example" in assert_error(r, 400, "invalid_host")["message"]
    for host in ("127.0.0.1", "localhost", "[::1]"):
        port = either.base_url.port
        assert either.get("/loras", headers={"host": f"{host}:{port}"}).status_code == 200


def test_a_json_body_over_1_mb_is_refused_before_it_is_read(either):
    big = b'{"description": "' + b"x" * (1 << 20) + b'"}'
    json_type = {"content-type": "application/json"}
    r = either.patch("/loras/a.safetensors", content=big, headers=json_type)
    assert "1 MB" in assert_error(r, 413, "too_large")["message"]
    # Without Content-Length (chunked), counted as it streams in.
    chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))
    r = either.patch("/loras/a.safetensors", content=chunks, headers=json_type)
    assert "1 MB" in assert_error(r, 413, "too_large")["message"]
    # /generate takes an init image and a mask inline (data URLs): up to their size, no more.
    over = b'{"prompt": "x", "init_image": "' + b"A" * MAX_GENERATE_BYTES + b'"}'
    r = either.post("/generate", content=over, headers=json_type)
    assert "40 MB" in assert_error(r, 413, "too_large")["message"]


def test_a_training_upload_over_its_limit_is_refused_from_its_headers(app):
    """126 MB is the limit (5 images of 20 MB, a 5 MB mask for each, and the form); the answer
    comes before a byte of the body is sent."""
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as s:
        s.sendall(
            b"POST /train-lora HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 209715200\r\n\r\n"
        )
        answer = b""
        while b"}}" not in answer and (chunk := s.recv(4096)):  # head and the JSON body
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and '"too_large"' in answer, answer
    assert "126 MB" in answer


def test_the_newer_routes_hold_the_same_line(either, app, tiny_models):
    """Captions, metadata edits and image paging: bad input is a JSON 4xx and changes
    nothing on disk."""
    lora = tiny_models["sd"].loras["style_a"]
    r = either.post(
        "/loras",
        files={"file": ("held.safetensors", lora.read_bytes())},
        data={"overwrite": "true"},
    )
    assert r.status_code == 201, r.text
    owner = "alice" if "user_id" in either.params else "local"
    path = app.data_dir / "loras" / owner / "held.safetensors"
    before = path.read_bytes()
    url = "/loras/held.safetensors"
    for raw, code in (
        (b'{"preferred_strength": NaN}', "invalid_request"),
        (b'{"preferred_strength": 1e999}', "invalid_request"),
        (b'{"description": "' + b"x" * 3000 + b'"}', "invalid_request"),
        (b'{"trigger_word": ""}', "invalid_request"),
    ):
        r = either.patch(url, content=raw, headers={"content-type": "application/json"})
        assert_error(r, 422, code)
    r = either.patch(url, content=b'{"description": "x"}', headers={"content-type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")
    r = either.patch(url, json={"description": "x"}, headers={"host": "evil.example"})
    assert_error(r, 400, "invalid_host")
    big = b"x" * (MAX_TRAINING_IMAGES * MAX_TRAINING_IMAGE_BYTES + (2 << 20))
    r = either.post(
        "/caption", content=big, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert_error(r, 413, "too_large")
    big = b"x" * (MAX_TRAINING_IMAGE_BYTES + (2 << 20))
    r = either.post(
        "/images", content=big, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert_error(r, 413, "too_large")
    assert_error(either.get("/images", params={"cursor": "%%%"}), 422, "invalid_cursor")
    assert_error(either.get("/images", params={"limit": 100000}), 422)
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]


def test_json_routes_take_json_only(either):
    body = b'{"prompt": "x", "steps": 2}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        r = either.post("/generate", content=body, headers=headers)
        assert "application/json" in assert_error(r, 415, "unsupported_media_type")["message"]
    ok = either.post("/generate", content=body, headers={"content-type": "application/json"})
    assert ok.status_code == 200, ok.text


def test_the_engine_serves_its_orchestrator_only(app):
    url = f"http://127.0.0.1:{app.engine_port}"
    for method, path in (("GET", "/health"), ("GET", "/loras"), ("POST", "/generate")):
        r = httpx.request(method, url + path, json={"prompt": "x", **FAST})
        assert ENGINE_TOKEN_HEADER in assert_error(r, 401, "engine_token_required")["message"]
        wrong = httpx.request(method, url + path, headers={ENGINE_TOKEN_HEADER: "guess"})
        assert_error(wrong, 401, "engine_token_required")
    assert httpx.get(url + "/livez").json() == {"status": "alive"}
    # The orchestrator itself gets through, as it always has.
    with app.client() as c:
        assert c.post("/generate", json={"prompt": "x", **FAST}).status_code == 200


def test_a_supervised_engine_gets_a_new_random_token(tiny_models, tmp_path):
    proc = OrchestratorProcess(str(tiny_models["sd"].folder), tmp_path)
    proc.env.pop("LORAMINT_ENGINE__TOKEN")
    proc.start_ready()
    try:
        with proc.engine_client() as c:  # the test's fixed token is not the engine's
            assert_error(c.get("/health"), 401, "engine_token_required")
        with proc.client() as c:
            assert c.post("/generate", json={"prompt": "x", **FAST}).status_code == 200
    finally:
        proc.stop()


def test_an_engine_bound_beyond_loopback_needs_a_token(tmp_path):
    env = {"LORAMINT_ENGINE_HOST": "0.0.0.0", "LORAMINT_DATA_DIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "engine"],
        cwd=ROOT,
        env={**EngineProcess("x", tmp_path, tmp_path / "log").env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "0.0.0.0" in run.stderr and "LORAMINT_ENGINE_TOKEN" in run.stderr


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "http://127.0.0.1:1", "sec-fetch-site": "same-site"},
    ],
)
def test_changes_asked_for_by_another_website_are_refused(app, headers):
    with app.client() as c:
        image = c.post("/generate", json={"prompt": "mine", **FAST}).json()["images"][0]
        refused = [
            c.post("/generate", json={"prompt": "x", **FAST}, headers=headers),
            c.delete(image["url"], headers=headers),
            c.post("/train-lora", data={"name": "x"}, headers=headers),
            c.post("/jobs/abc/cancel", headers=headers),
            c.post("/generate?async=true", json={"prompt": "x"}, headers=headers),
            c.patch("/loras/x.safetensors", json={"description": "x"}, headers=headers),
            c.post("/caption", files={"images": ("a.png", b"x")}, headers=headers),
        ]
        for r in refused:
            err = assert_error(r, 403, "cross_site_request")
            assert "another website" in err["message"]
        # Reading is not a change; the image is still there.
        assert c.get(image["url"], headers=headers).status_code == 200


def test_changes_from_its_own_pages_and_from_scripts_pass(app):
    own = {"origin": app.url, "sec-fetch-site": "same-origin"}
    with app.client() as c:
        for headers in (own, {}):
            r = c.post("/generate", json={"prompt": "x", **FAST}, headers=headers)
            assert r.status_code == 200, r.text


def test_every_answer_carries_the_security_headers(app):
    with app.client() as c:
        answers = [
            c.get("/generate"),
            c.get("/loras"),
            c.get("/static/app.js"),
            c.get("/images/none.png"),
            c.post("/generate", json={"prompt": "x"}, headers={"origin": "https://evil.example"}),
        ]
    for r in answers:
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, r.url
        assert "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"


def test_the_api_docs_are_served_from_the_app_itself(app):
    with app.client() as c:
        page = c.get("/docs")
        assert page.status_code == 200
        scripts = re.findall(r"<script([^>]*)>", page.text)
        assert scripts and all("src=" in attrs for attrs in scripts), "inline script"
        for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
            assert c.get(src).status_code == 200, src
        assert "https://" not in page.text
        assert c.get("/openapi.json").json()["paths"]["/generate"]
