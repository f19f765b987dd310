"""The public API through the orchestrator, end to end on a real engine (tiny model)."""

from __future__ import annotations

import re

import pytest

from tests.engine_process import OrchestratorProcess
from tests.helpers import BAD_JSON, assert_error, is_png, png_bytes, sse_events, wait_job


def safetensors_load(data: bytes) -> dict:
    from safetensors.torch import load

    return load(data)


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
    # Where the engine's time went, passed through the proxy: the wait, render and save.
    timing = dict(part.split(";dur=") for part in gen.headers["server-timing"].split(", "))
    assert list(timing) == ["wait", "render", "save"] and float(timing["render"]) > 0
    on_disk = app.data_dir / "outputs/carol" / image["file"]
    download = client.get(image["url"])
    assert download.headers["content-type"] == "image/png" and is_png(download.content)
    assert download.content == on_disk.read_bytes()

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
    events = sse_events(client, f"/jobs/{job_id}/events", params={})
    assert events[-1][0] == "succeeded"
    assert wait_job(client, job_id, params={})["user_id"] == "carol"

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
    lora_file = app.data_dir / "loras/carol/through_proxy.safetensors"
    assert client.get(loras[0]["url"]).content == lora_file.read_bytes()  # streamed download
    kohya = client.get(loras[0]["url"] + "&format=kohya")
    assert kohya.status_code == 200 and "_kohya" in kohya.headers["content-disposition"]
    kohya_keys = safetensors_load(kohya.content)
    assert kohya_keys and all(k.startswith("lora_unet_") for k in kohya_keys)
    assert client.delete(loras[0]["url"]).status_code == 200
    assert client.get("/loras").json()["loras"] == []
    assert client.delete(image["url"]).status_code == 200
    assert_error(client.get(image["url"]), 404, "not_found")


def test_jobs_captions_and_edits_through_the_orchestrator(client, app, tiny_models):
    started = client.post("/generate?async=true", json={"prompt": "x", "steps": 3, "seed": 9})
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["job"]["user_id"] == "carol" and job["job"]["kind"] == "generate"
    events = sse_events(client, f"/jobs/{job['job_id']}/events", params={})
    assert events[-1][0] == "succeeded" and any(d["preview"] for _, d in events)
    image = events[-1][1]["result"]["images"][0]
    assert (app.data_dir / "outputs/carol" / image["file"]).is_file()
    listed = client.get("/jobs").json()["jobs"]
    assert listed[0]["id"] == job["job_id"] and listed[0]["preview"] is None
    page = client.get("/images", params={"limit": 1}).json()
    assert [im["file"] for im in page["images"]] == [image["file"]]
    # The tiny model has no captioner here: a clear 503, not a hang.
    files = [("images", ("a.png", png_bytes((200, 0, 0)), "image/png"))]
    assert_error(client.post("/caption", files=files), 503, "captioner_unavailable")
    lora = tiny_models["sd"].loras["style_a"]
    client.post("/loras", files={"file": ("edit_me.safetensors", lora.read_bytes())})
    r = client.patch("/loras/edit_me.safetensors", json={"trigger_word": "sks"})
    assert r.status_code == 200 and r.json()["metadata"]["loramint.trigger_word"] == "sks"
    assert_error(client.patch("/loras/edit_me.safetensors", json={"rank": 3}), 422)
    assert_error(client.patch("/loras/..%2Fx", json={"trigger_word": "a"}), 422)
    # Another website's page can't make the browser edit or start jobs.
    cross = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    r = client.patch("/loras/edit_me.safetensors", json={"trigger_word": "x"}, headers=cross)
    assert_error(r, 403, "cross_site_request")
    r = client.post("/generate?async=true", json={"prompt": "x"}, headers=cross)
    assert_error(r, 403, "cross_site_request")
    r = client.patch(
        "/loras/edit_me.safetensors",
        content=b'{"trigger_word": "x"}',
        headers={"content-type": "text/plain"},
    )
    assert_error(r, 415)
    assert client.delete("/loras/edit_me.safetensors").status_code == 200


def test_a_rendering_generation_does_not_block_training_and_429s_keep_retry_after(client):
    """Once a running generation job made training answer too_many_jobs; and the orchestrator
    dropped the engine's Retry-After on 429s."""
    slow = client.post("/generate?async=true", json={"prompt": "busy", "steps": 120})
    assert slow.status_code == 202, slow.text
    files = [("images", ("a.png", png_bytes((0, 90, 200)), "image/png"))]
    long = {"name": "while_rendering", "steps": "5000", "prior_preservation": "false"}
    first = client.post("/train-lora", files=files, data=long)
    assert first.status_code == 202, first.text
    second = client.post("/train-lora", files=files, data={**long, "name": "second"})
    assert_error(second, 429, "too_many_jobs")
    assert int(second.headers["retry-after"]) >= 1
    assert client.post(f"/jobs/{first.json()['job_id']}/cancel").status_code == 200
    assert wait_job(client, first.json()["job_id"], params={})["status"] == "cancelled"
    wait_job(client, slow.json()["job_id"], params={})


def test_bad_input_is_a_json_422_naming_the_problem(client):
    assert_error(client.post("/generate", json={"prompt": ""}), 422, "invalid_request")
    for raw, word in BAD_JSON:
        r = client.post("/generate", content=raw, headers={"content-type": "application/json"})
        assert word in assert_error(r, 422, "invalid_request")["message"], raw[:40]
    err = assert_error(client.post("/generate", json={"prompt": "x", "steps": 151}), 422)
    assert "steps" in err["message"] and "150" in err["message"]
    err = assert_error(client.post("/generate", json={"prompt": "x", "user_id": "alice"}), 422)
    assert "user_id" in err["message"]
    assert_error(client.get("/jobs/nope"), 404, "not_found")
    for job in ("%2E%2E", "a.b", "..%2Fhealth"):
        assert_error(client.get(f"/jobs/{job}"), 404, "not_found")
    for url in ["/loras/..%2F..%2Fsecret", "/images/%2e%2e", "/images/a%2Fb.png"]:
        assert_error(client.get(url), 422, "invalid_file_name")
    r = client.request("DELETE", "/loras/x.safetensors", content=b'{"user_id": "alice"}')
    assert_error(r, 422, "unexpected_body")


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
        "/caption",
        "/loras/{file}",
        "/images/{file}",
        "/health",
    ]:
        assert path in paths, path
    for path, operations in paths.items():  # a fuzzer reaches only declared parameters
        for method, op in operations.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert set(re.findall(r"{(\w+)}", path)) <= declared, (method, path)
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    body = paths["/generate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    generate = schemas[body["$ref"].rsplit("/", 1)[-1]]
    assert generate["required"] == ["prompt"] and "user_id" not in generate["properties"]
    assert generate["properties"]["prompt"]["maxLength"] == 4000
    steps = generate["properties"]["steps"]["anyOf"][0]
    assert (steps["minimum"], steps["maximum"]) == (1, 150)
    assert generate["properties"]["width"]["anyOf"][0]["maximum"] == 2048
    strength = schemas["LoraSpec"]["properties"]["strength"]
    assert (strength["minimum"], strength["maximum"]) == (-2, 2)
    form = paths["/train-lora"]["post"]["requestBody"]["content"]["multipart/form-data"]
    props = form["schema"]["properties"]
    # Images are uploaded or named from the gallery: 1-5 in all, checked by the form.
    assert set(form["schema"]["required"]) == {"name"} and "user_id" not in props
    assert props["images"]["maxItems"] == 5 and props["gallery"]["maxItems"] == 5
    assert props["steps"]["anyOf"][0]["maximum"] == 5000
    init = generate["properties"]["init_image"]["anyOf"][0]
    assert init["maxLength"] > 20 * 2**20  # a 20 MB picture, base64-encoded
    ok = paths["/loras"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/LoraList")
    for path in ("/generate", "/train-lora"):
        failed = paths[path]["post"]["responses"]["4XX"]["content"]["application/json"]
        assert failed["schema"]["$ref"].endswith("/ErrorBody"), path
    assert "HTTPValidationError" not in schemas  # FastAPI's {"detail": ...} is never sent
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


def test_the_banner_says_when_no_queue_worker_is_connected():
    from orchestrator.banner import banner

    reason = "no engine worker is connected: start one with `python -m engine worker`"
    health = {"status": "waiting", "reason": reason, "queue": "celery", "workers": []}
    b = banner({"state": "starting", "reason": reason, "health": health})
    assert b is not None and b["level"] == "warning" and b["details"] == reason
    assert b["text"].startswith("No engine worker is connected yet")


def test_the_banner_names_the_cause_of_a_fallback():
    from orchestrator.banner import banner

    def fallback(reason: str) -> str:
        health = {"status": "ready", "model": "builtin:demo", "fallback_reason": reason}
        return banner({"state": "ready", "reason": None, "health": health})["text"]

    offline = (
        "model 'stabilityai/sd-turbo' is not in this machine's Hugging Face cache, and the Hub "
        "can't be reached: the name huggingface.co can't be looked up. Fix: go online..."
    )
    assert fallback(offline).startswith("Offline: stabilityai/sd-turbo is not on this machine")
    broken = "model '/models/x' could not be loaded (OSError: bad file). Fix: ..."
    assert fallback(broken).startswith("/models/x could not be loaded, so LoraMint is running")
