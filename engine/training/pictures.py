"""The pictures a training draws besides its steps: samples, the finished LoRA's thumbnail, the
report card's, and the card's grid pictures drawn on demand later. All at the model's width
capped at 512 px and its default steps capped at 30: cheap beside the training, and a picture
drawn on demand matches the card's own. Runs on the device worker thread."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PIL import Image

from engine.jobs import Cancelled
from engine.runtime import LoadedModel, Runtime
from engine.training.files import KIND
from engine.values import LoraRef, RenderParams


def sample_steps(model: LoadedModel) -> int:
    """Sampling steps of a sample image or thumbnail: the model's default, at most 30."""
    return min(model.info.defaults.steps, 30)


def draw(
    model: LoadedModel, pairs: list[tuple[str, int]], stop: Callable[[], bool]
) -> list[Image.Image]:
    """One picture per (prompt, seed), in one batch, with the adapters as they are now;
    cancelled at the first sampling step after `stop()`."""
    from engine.gpu import eager
    from engine.pipelines import render

    def step(_i: int, _latents: Any) -> None:
        if stop():
            raise Cancelled()

    d = model.info.defaults
    side = min(d.width, 512)
    prompts, seeds = (tuple(x) for x in zip(*pairs, strict=True))
    params = RenderParams(prompts, "", sample_steps(model), d.guidance_scale, side, side, seeds)
    with eager(model.pipe):  # the adapters as they are may be PEFT's, live
        return render(model.pipe, params, step)


def submit_checkpoint(
    rt: Runtime,
    user: str,
    file: str,
    strength: float,
    where: tuple[str, int],
    stop: Callable[[], bool],
) -> Future:
    """A report card grid's picture on demand, queued on the device worker (between a
    training's steps too): a kept checkpoint (`file`) at `strength`, through the LoRA cache as
    a generation uses it, drawn as the card draws (`where`: its prompt and seed)."""
    model = rt.require_model()
    ref = LoraRef(user, file, rt.store.local_file(KIND, user, file), strength)

    def run() -> Image.Image:
        model.loras.activate([ref])
        return draw(model, [where], stop)[0]

    return rt.worker.submit(run, label="draw a checkpoint", owner=user)
