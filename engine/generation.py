"""Text-to-image requests: resolve defaults and LoRAs, render on the worker, save PNGs."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import Any, TypeVar

from PIL import Image, PngImagePlugin

from engine.contract.errors import ClientClosed, InvalidRequest
from engine.contract.schemas import MAX_SEED, GenerateRequest, GenerateResponse, ImageResult
from engine.runtime import Runtime
from engine.storage import atomic_path, read_safetensors_metadata
from engine.values import LoraRef, RenderParams

log = logging.getLogger(__name__)
T = TypeVar("T")
GONE_POLL_S = 0.25  # how often a waiting request checks that its client is still there


def a1111_parameters(p: dict[str, Any]) -> str:
    """The `parameters` text A1111, ComfyUI and image browsers read from a PNG."""
    tags = "".join(
        f" <lora:{lo['file'].removesuffix('.safetensors')}:{lo['strength']:g}>" for lo in p["loras"]
    )
    fields = (
        f"Steps: {p['steps']}, Sampler: {p['scheduler']}, CFG scale: {p['guidance_scale']:g}, "
        f"Seed: {p['seed']}, Size: {p['width']}x{p['height']}, Model: {p['model']}"
    )
    return f"{p['prompt']}{tags}\nNegative prompt: {p['negative_prompt']}\n{fields}"


def save_png(image: Image.Image, path_target: Any, params: dict[str, Any]) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", a1111_parameters(params))
    info.add_text("loramint", json.dumps(params, sort_keys=True))
    with atomic_path(path_target) as tmp:
        image.save(tmp, format="PNG", pnginfo=info)


class GenerationService:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _check_limits(self, steps: int, width: int, height: int, n: int) -> None:
        s = self.rt.settings
        if steps > s.max_steps:
            raise InvalidRequest(f"steps: at most {s.max_steps} on this server")
        if max(width, height) > s.max_side:
            raise InvalidRequest(f"width and height: at most {s.max_side} on this server")
        if n > s.max_images:
            raise InvalidRequest(f"num_images: at most {s.max_images} on this server")

    async def generate(
        self, user: str, req: GenerateRequest, gone: Callable[[], Awaitable[bool]]
    ) -> GenerateResponse:
        """`user` is already checked: it comes from the one identity channel (deps.py).
        `gone()` says whether the client has hung up; if so before the work starts, the work
        is dropped."""
        from engine.pipelines import render  # torch: only when there is work to do

        model = self.rt.require_model()
        self.rt.store.check_quota(user, self.rt.settings.user_quota_mb)
        d = model.info.defaults
        steps = req.steps or d.steps
        width, height = req.width or d.width, req.height or d.height
        guidance = d.guidance_scale if req.guidance_scale is None else req.guidance_scale
        self._check_limits(steps, width, height, req.num_images)
        refs = []
        for spec in req.loras:
            path = self.rt.store.resolve("loras", user, spec.file)
            read_safetensors_metadata(path)  # reject a broken file before queueing
            refs.append(LoraRef(user, path, spec.strength))
        seed = secrets.randbelow(MAX_SEED + 1) if req.seed is None else req.seed
        seeds = tuple((seed + i) % (MAX_SEED + 1) for i in range(req.num_images))
        render_params = RenderParams(
            req.prompt, req.negative_prompt, steps, guidance, width, height, seeds
        )

        def job() -> list[Image.Image]:
            model.loras.activate(refs)
            return render(model.pipe, render_params)

        started = time.perf_counter()
        future = self.rt.worker.submit(job, label="generate", owner=user)
        images = await self._wait(future, gone)
        base = {
            "user_id": user,
            "model": model.info.model,
            "family": model.info.family,
            "scheduler": type(model.pipe.scheduler).__name__,
            "prompt": req.prompt,
            "negative_prompt": req.negative_prompt,
            "steps": steps,
            "guidance_scale": guidance,
            "width": width,
            "height": height,
            "loras": [{"file": r.path.name, "strength": r.strength} for r in refs],
        }
        results = await asyncio.to_thread(self._save_all, user, images, seeds, base)
        return GenerateResponse(
            images=results,
            parameters={**base, "seed": seed, "num_images": req.num_images},
            seconds=round(time.perf_counter() - started, 3),
        )

    async def _wait(self, future: Future[T], gone: Callable[[], Awaitable[bool]]) -> T:
        """The work's result; if the client hangs up while it waits, it never runs. Work
        already running finishes (its images are saved for the user)."""
        waiting = asyncio.wrap_future(future)
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=GONE_POLL_S)
            if done:
                return waiting.result()
            if await gone() and self.rt.worker.withdraw(future):
                log.info("dropped a queued generation: its client went away")
                raise ClientClosed("the client went away before its generation started")

    def _save_all(
        self, user: str, images: list[Image.Image], seeds: tuple[int, ...], base: dict[str, Any]
    ) -> list[ImageResult]:
        folder = self.rt.store.user_dir("outputs", user, create=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        results = []
        for i, (image, seed) in enumerate(zip(images, seeds, strict=True)):
            params = {**base, "seed": seed, "created": datetime.now(timezone.utc).isoformat()}
            name = f"{stamp}-{i}-{seed}.png"
            save_png(image, folder / name, params)
            results.append(
                ImageResult(
                    file=name, url=f"/images/{name}?user_id={user}", seed=seed, parameters=params
                )
            )
        return results
