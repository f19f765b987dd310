"""A training job's report card (#28), kept up to date at each checkpoint: the judge (judge.py)
draws its prompts with the training adapter at each strength, on the device thread between two
steps, and report.py turns the scores into a verdict and advice for the job."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine.contract.records import TrainingRecord
from engine.contract.training import Scores, TrainingReport
from engine.jobs import Cancelled
from engine.training import report
from engine.training.judge import judge_for
from engine.uploads import TrainingImage
from engine.values import RenderParams


class ReportCard:
    def __init__(
        self,
        job_id: str,
        model: Any,
        record: TrainingRecord,
        images: list[TrainingImage],
        jobs: Any,
        steps: int,
    ) -> None:
        self.job_id, self.model, self.record, self.jobs = job_id, model, record, jobs
        self.steps = steps  # sampling steps of a judged picture
        self.judge_, why = judge_for(
            model.info.model, record.trigger_word, record.captions, [im.image for im in images]
        )
        self.ctx = report.Context(
            judge=getattr(self.judge_, "name", "none"),
            total_steps=record.steps or 0,
            trigger=record.trigger_word,
            first_caption=record.captions[0],
            sameness=getattr(self.judge_, "sameness", None),
            unavailable=why,
        )
        self.stop: Callable[[], bool] = lambda: False
        self.drawn: Callable[[float], None] = lambda seconds: None

    @property
    def images(self) -> int:
        """Pictures drawn to judge one checkpoint (for the time left)."""
        return self.judge_.pictures_per_checkpoint if self.judge_ else 0

    def judge(self, strength) -> tuple[dict[str, Scores], dict[str, str]]:
        """Scores and a held-out picture per strength, for the checkpoint being trained
        (`strength(s)`: a context with the training adapter at `s`)."""
        from engine.previews import data_url

        if self.judge_ is None:
            return {}, {}

        def draw(prompt: str, seeds: tuple[int, ...], s: float) -> list:
            started = time.monotonic()
            with strength(s):
                pictures = self._render(prompt, seeds)
            for _ in pictures:
                self.drawn((time.monotonic() - started) / len(pictures))
            return pictures

        cells = self.judge_.judge(draw)
        return (
            {s: c.scores for s, c in cells.items()},
            {s: data_url(c.picture) for s, c in cells.items()},
        )

    def _render(self, prompt: str, seeds: tuple[int, ...]) -> list:
        from engine.pipelines import render

        def step(_i: int, _latents: Any) -> None:
            if self.stop():  # a cancel stops the card mid-picture, as it does a sample
                raise Cancelled()

        d = self.model.info.defaults
        side = min(d.width, 512)
        params = RenderParams(prompt, "", self.steps, d.guidance_scale, side, side, seeds)
        return render(self.model.pipe, params, step)

    def report(self, final: bool) -> TrainingReport:
        points = self.jobs.current(self.job_id).checkpoints
        return report.build(points, self.ctx, final)
