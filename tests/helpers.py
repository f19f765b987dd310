from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

FAST = {"steps": 2, "guidance_scale": 3.0}
# The engine takes the user from the query only; these helpers act as alice.
ALICE = {"user_id": "alice"}
# JSON bodies both processes refuse with a 422, and a word the message must hold.
BAD_JSON = [
    (b"{oops", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    (b'{"prompt": "x", "guidance_scale": NaN}', "NaN"),
    (b'{"prompt": "x", "seed": Infinity}', "Infinity"),
    (b'{"prompt": "x", "loras": [{"file": "a", "strength": -Infinity}]}', "Infinity"),
    (b'{"prompt": "x", "guidance_scale": 1e999}', "too large"),
    (b'{"prompt": "x", "loras": ' + b"[" * 40 + b"]" * 40 + b"}", "nested deeper"),
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
    (b'["a", "list"]', "JSON object"),
    (b"42", "JSON object"),
]

# For a test whose subject is the same for both tiny families: the SDXL run goes with the slow
# tier (CI runs it; the inner loop, `-m "not slow"`, keeps within its budget).
SDXL_IN_SLOW_TIER = pytest.mark.parametrize(
    "engine", ["sd", pytest.param("sdxl", marks=pytest.mark.slow)], indirect=True
)


def generate(client: httpx.Client, **body: Any) -> dict[str, Any]:
    r = client.post("/generate", params=ALICE, json={"prompt": "a red fox", **FAST, **body})
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


def is_png(data: bytes) -> bool:
    """A whole PNG that decodes, not just some bytes."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    Image.open(io.BytesIO(data)).load()
    return True


def png_bytes(
    colour: tuple[int, int, int], size: tuple[int, int] = (64, 64), fmt: str = "PNG"
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


def encoded(image: Image.Image) -> bytes:
    """A picture as the PNG a user uploads."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def start_training(
    client: httpx.Client,
    images: list[bytes],
    params: dict[str, str] | None = None,
    masks: list[bytes] = (),
    **form: Any,
) -> dict[str, Any]:
    """POST /train-lora as alice (or with `params`, e.g. {} through the orchestrator)."""
    files = [("images", (f"img{i}.png", data, "image/png")) for i, data in enumerate(images)]
    files += [("masks", (f"mask{i}.png", data, "image/png")) for i, data in enumerate(masks)]
    data = {"overwrite": "true", **form}
    r = client.post(
        "/train-lora", params=ALICE if params is None else params, files=files, data=data
    )
    assert r.status_code == 202, r.text
    return r.json()


def wait_job(
    client: httpx.Client,
    job_id: str,
    timeout: float = 300,
    until=None,
    params: dict[str, str] | None = None,
) -> dict:
    """Poll until the job is terminal (or `until(job)` holds)."""
    import time

    params = ALICE if params is None else params
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}", params=params).json()
        if (until and until(job)) or job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} still {job['status']} after {timeout}s")


def sse_events(
    client: httpx.Client, url: str, params: dict[str, str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    import json

    events, name = [], None
    with client.stream("GET", url, params=ALICE if params is None else params) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
    return events


def decode_data_url(url: str, max_side: int = 256) -> np.ndarray:
    """A PNG data URL's pixels; it must decode and be no larger than `max_side`."""
    import base64

    assert url.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert max(image.size) <= max_side
    return np.asarray(image.convert("RGB"), dtype=np.int16)
