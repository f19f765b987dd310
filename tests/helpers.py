from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
from PIL import Image

FAST = {"steps": 2, "guidance_scale": 3.0}


def generate(client: httpx.Client, **body: Any) -> dict[str, Any]:
    r = client.post("/generate", json={"user_id": "alice", "prompt": "a red fox", **FAST, **body})
    assert r.status_code == 200, r.text
    return r.json()


def pixels(client: httpx.Client, image: dict[str, Any]) -> np.ndarray:
    r = client.get(image["url"])
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), dtype=np.int16)


def render(client: httpx.Client, **body: Any) -> np.ndarray:
    return pixels(client, generate(client, **body)["images"][0])


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"]
    if code:
        assert err["code"] == code, err
    return err


def png_bytes(
    colour: tuple[int, int, int], size: tuple[int, int] = (64, 64), fmt: str = "PNG"
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


def start_training(client: httpx.Client, images: list[bytes], **form: Any) -> dict[str, Any]:
    files = [("images", (f"img{i}.png", data, "image/png")) for i, data in enumerate(images)]
    data = {"user_id": "alice", "overwrite": "true", **form}
    r = client.post("/train-lora", files=files, data=data)
    assert r.status_code == 202, r.text
    return r.json()


def wait_job(client: httpx.Client, job_id: str, timeout: float = 300, until=None) -> dict:
    """Poll until the job is terminal (or `until(job)` holds)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if (until and until(job)) or job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} still {job['status']} after {timeout}s")


def sse_events(client: httpx.Client, url: str) -> list[tuple[str, dict[str, Any]]]:
    import json

    events, name = [], None
    with client.stream("GET", url) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
    return events
