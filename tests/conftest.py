from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.engine_process import EngineProcess

if TYPE_CHECKING:
    from tests.services import RedisServer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs CUDA: run on a GPU machine (./test.sh -m cuda)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(no_gpu)


@dataclass
class TinyModel:
    family: str
    folder: Path
    loras: dict[str, Path]  # name -> diffusers-format LoRA file


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TinyModel]:
    from safetensors.torch import load_file, save_file

    from engine.loras import to_kohya
    from tests.tiny import random_lora, tiny_sd, tiny_sdxl

    root = tmp_path_factory.mktemp("models")
    models = {}
    # The SDXL UNet is a little wider than diffusers' (2, 4) channels so that a LoRA on its
    # attention has enough capacity to show learning.
    builders = (("sd", lambda: tiny_sd(seed=0)), ("sdxl", lambda: tiny_sdxl(0, (8, 16))))
    for family, build in builders:
        pipe = build()
        folder = root / family
        pipe.save_pretrained(folder, safe_serialization=True)
        lora_dir = root / f"{family}-loras"
        lora_dir.mkdir()
        loras = {
            name: random_lora(pipe, lora_dir / f"{name}.safetensors", seed=seed, scale=4.0)
            for name, seed in (("style_a", 1), ("style_b", 2))
        }
        kohya = lora_dir / "style_a_kohya.safetensors"
        save_file(to_kohya(load_file(loras["style_a"])), kohya)
        loras["style_a_kohya"] = kohya
        models[family] = TinyModel(family, folder, loras)
    return models


@pytest.fixture(scope="session", params=["sd", "sdxl"])
def engine(
    request: pytest.FixtureRequest,
    tiny_models: dict[str, TinyModel],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EngineProcess]:
    model = tiny_models[request.param]
    work = tmp_path_factory.mktemp(f"engine-{request.param}")
    # A server limit under the contract's 150 steps, so the tests see it lower the limit.
    proc = EngineProcess(
        str(model.folder), work / "data", work / "engine.log", LORAMINT_MAX_STEPS="120"
    )
    proc.family = request.param  # type: ignore[attr-defined]
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with engine.client() as c:
        yield c


@pytest.fixture
def upload_lora(client: httpx.Client, tiny_models: dict[str, TinyModel], engine: EngineProcess):
    """Upload one of the family's test LoRAs for `user` through the API."""

    def upload(name: str, user: str = "alice", as_name: str | None = None) -> str:
        path = tiny_models[engine.family].loras[name]  # type: ignore[attr-defined]
        r = client.post(
            "/loras",
            params={"user_id": user},
            files={"file": (path.name, path.read_bytes())},
            data={"name": as_name or path.name, "overwrite": "true"},
        )
        assert r.status_code == 201, r.text
        return r.json()["file"]

    return upload


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Azurite blob service for the session; its connection string."""
    from tests.services import azurite_program, start_azurite

    if azurite_program() is None:
        pytest.skip("azurite is not installed (npm install --prefix .cache/npm azurite)")
    service, conn = start_azurite(tmp_path_factory.mktemp("azurite"))
    with service:
        yield conn


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server for a module's tests (a test may restart it on its port)."""
    from tests.services import RedisServer, find

    if find("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless (tests using it skip where it isn't installed). Per module:
    Playwright's sync API keeps an event loop running in this thread while it is open, which
    would break later tests that call asyncio.run."""
    from playwright.sync_api import sync_playwright

    from tests.browser import ARGS, CHROMIUM

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """An engine on the built-in demo model."""
    work = tmp_path_factory.mktemp("demo")
    proc = EngineProcess("builtin:demo", work / "data", work / "engine.log").start()
    yield proc
    proc.stop()
