"""Text-to-image work, on the model's side of the line: resolve the model's defaults and the
LoRAs into a plan, render it on the device worker, save the PNGs with what they were made with.

Where the work is queued and how its caller waits is the work queue's (`engine.work`); the
checks that need no model are the front's (`engine.front`)."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from PIL import Image

from engine import png
from engine.contract.errors import ApiError, InvalidRequest
from engine.contract.generation import GenerateRequest, GenerateResponse, ImageResult
from engine.contract.jobs import JobPhase
from engine.contract.names import check_file_name
from engine.contract.records import ImageParameters, LoraUse, image_fields
from engine.contract.schemas import MAX_SEED
from engine.editing.plan import Passes, plan_passes
from engine.jobs import Cancelled
from engine.runtime import LoadedModel, Runtime
from engine.storage import read_safetensors_metadata
from engine.values import LoraRef, RenderParams

log = logging.getLogger(__name__)


def png_bytes(image: Image.Image, params: ImageParameters) -> bytes:
    """The PNG with its parameters embedded, as A1111 and LoraMint's gallery read them."""
    record = json.dumps(params.record(), sort_keys=True)
    return png.encode(image, {"parameters": params.text(), "loramint": record})


@dataclass
class Plan:
    """One checked request: what to render and what to record with the images."""

    user: str
    model: LoadedModel
    refs: list[LoraRef]
    render: RenderParams  # the first pass's size
    passes: Passes  # from an image, and the hires-fix pass
    params: ImageParameters  # what each PNG records, but its seed and time

    @property
    def seed(self) -> int:
        return self.render.seeds[0]

    def image_parameters(self, seed: int) -> ImageParameters:
        """What one image records of how it was made (PNG text, gallery, answer)."""
        return self.params.model_copy(
            update={"seed": seed, "created": datetime.now(timezone.utc).isoformat()}
        )

    def job_parameters(self) -> ImageParameters:
        """What a job records: the request's, with its first seed and its image count."""
        return self.params.model_copy(
            update={"seed": self.seed, "num_images": len(self.render.seeds)}
        )


class GenerationWork:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _check_limits(
        self, model: LoadedModel, steps: int, size: tuple[int, int], req: GenerateRequest
    ) -> None:
        """`size`: the final picture's (after extend and upscale, which the message names)."""
        s = self.rt.settings
        width, height = size
        after = [name for name in ("extend", "upscale") if getattr(req, name)]
        made = f" (after {' and '.join(after)})" if after else ""
        if steps > s.max_steps:
            raise InvalidRequest(f"steps: at most {s.max_steps} on this server")
        if max(width, height) > s.max_side:
            raise InvalidRequest(
                f"the picture would be {width}x{height}{made}: width and height at most "
                f"{s.max_side} on this server (LORAMINT_MAX_SIDE)",
                code="size_too_large",
            )
        if req.num_images > s.max_images:
            raise InvalidRequest(f"num_images: at most {s.max_images} on this server")
        native = model.info.defaults.width
        if max(width, height) > native * s.max_size_ratio:
            raise InvalidRequest(
                f"{width}x{height}{made} is far above this model's native {native}x{native}: it "
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
        guidance = d.guidance_scale if req.guidance_scale is None else req.guidance_scale
        seed = secrets.randbelow(MAX_SEED + 1) if req.seed is None else req.seed
        passes = plan_passes(
            req,
            read_file=lambda name: self._read_image(user, name),
            check_size=lambda size: self._check_limits(model, steps, size, req),
            steps=steps,
            size=(req.width or d.width, req.height or d.height),
            native=d.width,
            seed=seed,
        )
        width, height = passes.size
        refs = []
        for spec in req.loras:
            file = check_file_name(spec.file, "loras")
            path = self.rt.store.local_file("loras", user, file)
            read_safetensors_metadata(path, file)  # reject a broken file before queueing
            refs.append(LoraRef(user, file, path, spec.strength))
        seeds = tuple((seed + i) % (MAX_SEED + 1) for i in range(req.num_images))
        render = RenderParams(
            req.prompt, req.negative_prompt, steps, guidance, width, height, seeds
        )
        params = ImageParameters(
            user_id=user,
            model=model.info.model,
            family=model.info.family,
            scheduler=type(model.pipe.scheduler).__name__,
            prompt=req.prompt,
            negative_prompt=req.negative_prompt,
            steps=steps,
            guidance_scale=guidance,
            width=passes.final[0],
            height=passes.final[1],
            loras=[LoraUse(file=r.file, strength=r.strength) for r in refs],
            init_image_sha256=passes.init_sha256,
            mask_sha256=passes.mask_sha256,
            **image_fields(req),
        )
        return Plan(user, model, refs, render, passes, params)

    def _read_image(self, user: str, name: str) -> bytes:
        """One of the user's images (the same 404 as none for another user's)."""
        return self.rt.store.local_file(
            "outputs", user, check_file_name(name, "outputs")
        ).read_bytes()

    def render_images(
        self, plan: Plan, stop: Callable[[], bool], on_step=None
    ) -> list[Image.Image]:
        """On the worker: the images, or Cancelled at the first step after `stop()`."""
        from engine.editing.passes import draw  # torch: only when there is work
        from engine.pipelines import memory_guard

        def halt_if_asked() -> None:
            if stop() or self.rt.stopping.is_set():
                raise Cancelled()

        def step(i: int, latents: Any) -> None:
            halt_if_asked()
            if on_step is not None:
                on_step(i, latents)

        halt_if_asked()
        r = plan.render
        what = f"{len(r.seeds)} image(s) of {plan.params.width}x{plan.params.height}"
        with memory_guard(what, "ask for fewer or smaller images"):
            plan.model.loras.activate(plan.refs)
            return draw(plan.model, r, plan.passes, step)

    def response(self, plan: Plan, results: list[ImageResult], seconds: float):
        return GenerateResponse(
            images=results, parameters=plan.job_parameters().record(), seconds=round(seconds, 3)
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
            url = f"/images/{name}?user_id={user}"
            results.append(ImageResult(file=name, url=url, seed=seed, parameters=params.record()))
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
                    parameters=params.record(),
                )
            )
        return results

    # -- as a job ------------------------------------------------------------------------
    def run_job(self, job_id: str, plan: Plan) -> Future[None] | None:
        """On the worker: the job's images, its progress and previews on the way. Encoding,
        saving and every job update go to `rt.after`, in order; its future is returned."""
        from engine.previews import data_url

        jobs, after, total = self.rt.jobs, self.rt.after, plan.passes.steps
        if not jobs.start(job_id, JobPhase.GENERATING):  # cancelled while it waited
            return None
        started = time.perf_counter()

        def on_step(step: int, latents: Any) -> None:
            preview = plan.model.preview(latents)  # small, and it needs the device's latents
            per_step = (time.perf_counter() - started) / step
            eta = round(per_step * (total - step), 1) if step >= 2 else None
            progress = dict(step=step, progress=round(step / total, 4), eta_s=eta)
            after.submit(lambda: jobs.progress(job_id, **progress, preview=data_url(preview)))

        try:
            images = self.render_images(plan, lambda: jobs.cancel_requested(job_id), on_step)
        except Cancelled:
            return after.submit(jobs.stop, job_id)
        except Exception as exc:  # the job records why; the engine keeps serving
            log.exception("generation job %s failed", job_id)
            return after.submit(jobs.fail, job_id, failure_message(exc))
        return after.submit(self._finish_job, job_id, plan, images, started)

    def _finish_job(self, job_id: str, plan: Plan, images: list, started: float) -> None:
        try:
            results = self.save_all(plan, images)
        except Exception as exc:  # a full disk, the user's quota: the job says so
            log.exception("generation job %s: saving failed", job_id)
            self.rt.jobs.fail(job_id, failure_message(exc))
            return
        answer = self.response(plan, results, time.perf_counter() - started)
        self.rt.jobs.succeed(job_id, answer.model_dump(mode="json"))


def failure_message(exc: Exception) -> str:
    """What a failed job says: a contract error's own words, else the error's type and text."""
    return exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
