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
