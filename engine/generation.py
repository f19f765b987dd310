"""Text-to-image requests: resolve defaults and LoRAs, render on the worker, save PNGs.

A request is answered in one of two ways: synchronously (the images in the answer; the work
stops if the client hangs up), or as a job (`?async=true`) whose events carry the queue
position, the step and a preview of the latents, and which can be cancelled."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from PIL import Image, PngImagePlugin

from engine.contract.errors import ApiError, ClientClosed, InvalidRequest, ShuttingDown
from engine.contract.names import check_file_name
from engine.contract.schemas import (
    MAX_SEED,
    GenerateAccepted,
    GenerateRequest,
    GenerateResponse,
    ImageResult,
    JobPhase,
    JobStatus,
)
from engine.jobs import Cancelled
from engine.runtime import STOPPING, LoadedModel, Runtime
from engine.storage import iso, read_safetensors_metadata
from engine.values import LoraRef, RenderParams

log = logging.getLogger(__name__)
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


def png_bytes(image: Image.Image, params: dict[str, Any]) -> bytes:
    """The PNG with its parameters embedded, as A1111 and LoraMint's gallery read them."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", a1111_parameters(params))
    info.add_text("loramint", json.dumps(params, sort_keys=True))
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


@dataclass
class Plan:
    """One checked request: what to render and what to record with the images."""

    user: str
    model: LoadedModel
    refs: list[LoraRef]
    render: RenderParams
    base: dict[str, Any]  # the parameters saved in each PNG, but the seed

    @property
    def seed(self) -> int:
        return self.render.seeds[0]

    def image_parameters(self, seed: int) -> dict[str, Any]:
        """What one image records of how it was made (PNG text, gallery, answer)."""
        return {**self.base, "seed": seed, "created": datetime.now(timezone.utc).isoformat()}


class GenerationService:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _check_limits(self, model: LoadedModel, steps: int, width: int, height: int, n: int):
        s = self.rt.settings
        if steps > s.max_steps:
            raise InvalidRequest(f"steps: at most {s.max_steps} on this server")
        if max(width, height) > s.max_side:
            raise InvalidRequest(f"width and height: at most {s.max_side} on this server")
        if n > s.max_images:
            raise InvalidRequest(f"num_images: at most {s.max_images} on this server")
        native = model.info.defaults.width
        if max(width, height) > native * s.max_size_ratio:
            raise InvalidRequest(
                f"{width}x{height} is far above this model's native {native}x{native}: it "
                f"would draw noise, slowly. Ask for at most {int(native * s.max_size_ratio)} "
                "px a side (LORAMINT_MAX_SIZE_RATIO allows more)",
                code="size_too_large",
            )

    def plan(self, user: str, req: GenerateRequest) -> Plan:
        """`user` is already checked: it comes from the one identity channel (deps.py)."""
        model = self.rt.require_model()
        self.rt.store.check_quota(user, self.rt.settings.user_quota_mb)
        d = model.info.defaults
        steps = req.steps or d.steps
        width, height = req.width or d.width, req.height or d.height
        guidance = d.guidance_scale if req.guidance_scale is None else req.guidance_scale
        self._check_limits(model, steps, width, height, req.num_images)
        refs = []
        for spec in req.loras:
            file = check_file_name(spec.file, "loras")
            path = self.rt.store.local_file("loras", user, file)
            read_safetensors_metadata(path, file)  # reject a broken file before queueing
            refs.append(LoraRef(user, file, path, spec.strength))
        seed = secrets.randbelow(MAX_SEED + 1) if req.seed is None else req.seed
        seeds = tuple((seed + i) % (MAX_SEED + 1) for i in range(req.num_images))
        params = RenderParams(
            req.prompt, req.negative_prompt, steps, guidance, width, height, seeds
        )
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
            "loras": [{"file": r.file, "strength": r.strength} for r in refs],
        }
        return Plan(user, model, refs, params, base)

    def render_images(
        self, plan: Plan, stop: Callable[[], bool], on_step=None
    ) -> list[Image.Image]:
        """On the worker: the images, or Cancelled at the first step after `stop()`."""
        from engine.pipelines import memory_guard, render  # torch: only when there is work

        def halt_if_asked() -> None:
            if stop() or self.rt.stopping.is_set():
                raise Cancelled()

        def step(i: int, latents: Any) -> None:
            halt_if_asked()
            if on_step is not None:
                on_step(i, latents)

        halt_if_asked()
        r = plan.render
        what = f"{len(r.seeds)} image(s) of {r.width}x{r.height}"
        with memory_guard(what, "ask for fewer or smaller images"):
            plan.model.loras.activate(plan.refs)
            return render(plan.model.pipe, r, step)

    # -- synchronous ---------------------------------------------------------------------
    async def generate(
        self, user: str, req: GenerateRequest, gone: Callable[[], Awaitable[bool]]
    ) -> GenerateResponse:
        """The images in the answer. If the client hangs up, queued work is dropped and
        running work stops at its next step; nothing is saved."""
        plan = self.plan(user, req)
        started = time.perf_counter()
        hung_up = threading.Event()
        future = self.rt.worker.submit(
            lambda: self.render_images(plan, hung_up.is_set), label="generate", owner=user
        )
        images = await self._wait(future, gone, hung_up)
        keep = self.inline_all if self.rt.settings.mode == "preview" else self.save_all
        results = await asyncio.to_thread(keep, plan, images)
        return self.response(plan, results, time.perf_counter() - started)

    async def _wait(self, future: Future, gone, hung_up: threading.Event) -> list[Image.Image]:
        waiting = asyncio.wrap_future(future)
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=GONE_POLL_S)
            if done:
                break
            if not hung_up.is_set() and await gone():
                hung_up.set()
                if self.rt.worker.withdraw(future):
                    log.info("dropped a queued generation: its client went away")
                    raise ClientClosed("the client went away before its generation started")
                log.info("stopping a running generation: its client went away")
        try:
            return waiting.result()
        except Cancelled:
            if hung_up.is_set():
                raise ClientClosed("the client went away; the generation was stopped") from None
            raise ShuttingDown(STOPPING) from None

    def response(self, plan: Plan, results: list[ImageResult], seconds: float):
        return GenerateResponse(
            images=results,
            parameters={**plan.base, "seed": plan.seed, "num_images": len(plan.render.seeds)},
            seconds=round(seconds, 3),
        )

    def save_all(self, plan: Plan, images: list[Image.Image]) -> list[ImageResult]:
        user = plan.user
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        results = []
        for i, (image, seed) in enumerate(zip(images, plan.render.seeds, strict=True)):
            params = plan.image_parameters(seed)
            name = f"{stamp}-{i}-{seed}.png"
            with self.rt.store.writing("outputs", user, name) as tmp:
                tmp.write_bytes(png_bytes(image, params))
            results.append(
                ImageResult(
                    file=name, url=f"/images/{name}?user_id={user}", seed=seed, parameters=params
                )
            )
        return results

    def inline_all(self, plan: Plan, images: list[Image.Image]) -> list[ImageResult]:
        """The images as data URLs, stored nowhere (preview mode)."""
        results = []
        for image, seed in zip(images, plan.render.seeds, strict=True):
            params = plan.image_parameters(seed)
            data = base64.b64encode(png_bytes(image, params)).decode()
            results.append(
                ImageResult(
                    file=f"{seed}.png",
                    url=f"data:image/png;base64,{data}",
                    seed=seed,
                    parameters=params,
                )
            )
        return results

    # -- as a job ------------------------------------------------------------------------
    def start_job(self, user: str, req: GenerateRequest) -> GenerateAccepted:
        plan = self.plan(user, req)
        params = {**req.model_dump(), **plan.base, "seed": plan.seed}
        job = self.rt.jobs.create("generate", user, plan.render.steps, params)
        future = self.rt.worker.submit(
            lambda: self.run_job(job.id, plan), label="generate", owner=user
        )
        self.rt.track(job.id, future)
        job = self.rt.jobs.current(job.id)
        return GenerateAccepted(job_id=job.id, status_url=f"/jobs/{job.id}", job=job)

    def run_job(self, job_id: str, plan: Plan) -> None:
        from engine.previews import data_url

        jobs, total = self.rt.jobs, plan.render.steps
        if jobs.current(job_id).status.terminal:  # cancelled while it waited
            return
        started = time.perf_counter()
        jobs.update(
            job_id,
            status=JobStatus.RUNNING,
            phase=JobPhase.GENERATING,
            started=iso(time.time()),
        )

        def on_step(step: int, latents: Any) -> None:
            preview = plan.model.preview(latents)
            per_step = (time.perf_counter() - started) / step
            jobs.update(
                job_id,
                step=step,
                progress=round(step / total, 4),
                eta_s=round(per_step * (total - step), 1) if step >= 2 else None,
                preview=data_url(preview, fast=True),
            )

        try:
            images = self.render_images(plan, lambda: jobs.cancel_requested(job_id), on_step)
            results = self.save_all(plan, images)
        except Cancelled:
            jobs.update(job_id, **jobs.stopped(job_id), preview=None)
            return
        except Exception as exc:  # the job records why; the engine keeps serving
            log.exception("generation job %s failed", job_id)
            message = exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
            jobs.update(job_id, status=JobStatus.FAILED, finished=iso(time.time()), error=message)
            return
        answer = self.response(plan, results, time.perf_counter() - started)
        jobs.update(
            job_id,
            status=JobStatus.SUCCEEDED,
            finished=iso(time.time()),
            eta_s=0.0,
            preview=None,
            result=answer.model_dump(),
        )
