"""The public API through the orchestrator, end to end on a real engine (tiny model)."""

from __future__ import annotations

import pytest

from tests.engine_process import OrchestratorProcess
from tests.helpers import assert_error, png_bytes, sse_events, wait_job


@pytest.fixture(scope="module")
def app(tiny_models, tmp_path_factory):
    proc = OrchestratorProcess(
        str(tiny_models["sd"].folder), tmp_path_factory.mktemp("api"), LORAMINT_DEFAULTUSER="carol"
    )
    proc.start_ready()
    yield proc
    proc.stop()


@pytest.fixture
def client(app):
    with app.client() as c:
        yield c


def test_generate_train_list_use_delete(client, app):
    gen = client.post("/generate", json={"prompt": "a red fox", "steps": 2, "seed": 5})
    assert gen.status_code == 200, gen.text
    image = gen.json()["images"][0]
    assert image["parameters"]["user_id"] == "carol"
    assert (app.data_dir / "outputs/carol" / image["file"]).exists()
    assert client.get(image["url"]).headers["content-type"] == "image/png"

    files = [
        ("images", ("a.png", png_bytes((200, 0, 0)), "image/png")),
        ("images", ("b.png", png_bytes((0, 0, 200)), "image/png")),
    ]
    started = client.post(
        "/train-lora",
        files=files,
        data={"name": "through_proxy", "steps": "20", "trigger_word": "zqx"},
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    events = sse_events(client, f"/jobs/{job_id}/events")
    assert events[-1][0] == "succeeded"
    assert wait_job(client, job_id)["user_id"] == "carol"

    loras = client.get("/loras").json()["loras"]
    assert [lo["file"] for lo in loras] == ["through_proxy.safetensors"]
    used = client.post(
        "/generate",
        json={
            "prompt": "zqx",
            "steps": 2,
            "seed": 5,
            "loras": [{"file": "through_proxy.safetensors", "strength": 0.8}],
        },
    )
    assert used.status_code == 200, used.text
    assert client.get(loras[0]["url"]).content[:8]  # streamed download
    kohya = client.get(loras[0]["url"] + "&format=kohya")
    assert kohya.status_code == 200 and "_kohya" in kohya.headers["content-disposition"]
    assert client.delete(loras[0]["url"]).status_code == 200
    assert client.get("/loras").json()["loras"] == []
    assert client.delete(image["url"]).status_code == 200
    assert_error(client.get(image["url"]), 404, "not_found")


def test_engine_errors_pass_through_in_words(client):
    assert_error(client.post("/generate", json={"prompt": ""}), 422, "invalid_request")
    assert_error(
        client.post("/generate", content=b"{oops", headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )
    assert_error(client.post("/generate", json=["a list"]), 422, "invalid_request")
    assert_error(client.get("/jobs/nope"), 404)


def test_openapi_describes_every_public_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in [
        "/generate",
        "/train-lora",
        "/loras",
        "/images",
        "/jobs/{job_id}",
        "/jobs/{job_id}/events",
        "/jobs/{job_id}/cancel",
        "/loras/{file}",
        "/images/{file}",
        "/health",
    ]:
        assert path in paths, path
    body = paths["/generate"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["required"] == ["prompt"] and "loras" in body["schema"]["properties"]
    assert client.get("/docs").status_code == 200


def test_pages_render_and_root_redirects(client):
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/generate"
    for page in ["/generate", "/train-lora", "/my-images", "/my-loras"]:
        r = client.get(page)
        assert r.status_code == 200 and "<nav" in r.text and 'aria-current="page"' in r.text


def test_engine_down_gives_503_not_a_hang(tmp_path):
    proc = OrchestratorProcess("unused", tmp_path, LORAMINT_ENGINE__AUTOSTART="false")
    try:
        health = proc.start(lambda h: h["engine"]["state"] == "error", timeout=60).health()
        assert "no engine answers" in health["engine"]["reason"]
        with proc.client(timeout=15) as c:
            assert_error(c.get("/loras"), 503, "engine_unavailable")
    finally:
        proc.stop()


def test_documented_generate_body_matches_the_engines():
    """The orchestrator documents /generate by hand (it doesn't import the engine); this keeps
    the two from drifting apart."""
    from engine.schemas import GenerateRequest, LoraSpec
    from orchestrator.routes.api import GENERATE_BODY

    schema = GENERATE_BODY["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == set(GenerateRequest.model_fields) - {"user_id"}
    assert set(schema["properties"]["loras"]["items"]["properties"]) == set(LoraSpec.model_fields)
