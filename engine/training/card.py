"""A training job's report card (#28), kept up to date at each checkpoint: the judge (judge.py)
draws its prompts with the training adapter at each strength, on the device thread between two
steps, and report.py turns the scores into a verdict and advice for the job."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from engine.contract.records import TrainingRecord
from engine.contract.training import STRENGTHS, Scores, TrainingReport
from engine.training import pictures, report
from engine.training.defaults import preset_defaults
from engine.training.judge import SEEDS, judge_for
from engine.uploads import TrainingImage


class ReportCard:
    def __init__(
        self,
        job_id: str,
        model: Any,
        record: TrainingRecord,
        images: list[TrainingImage],
        jobs: Any,
        clip: Any = None,
    ) -> None:
        self.job_id, self.model, self.record, self.jobs = job_id, model, record, jobs
        self.judge_, why = judge_for(
            model, record.trigger_word, record.captions, [im.image for im in images], clip
        )
        # A quick test is judged against the full run it stands for: "continue" then offers
        # the steps a full run would have had.
        full = "object" if record.preset in (None, "quick-test") else record.preset
        defaults = preset_defaults(
            full,
            model.info.family,
            len(images),
            model.info.defaults.width,
            bool(record.mask_sha256),
        )
        self.ctx = report.Context(
            judge=getattr(self.judge_, "name", "none"),
            total_steps=record.steps or 0,
            default_steps=defaults["steps"],
            learning_rate=record.learning_rate or 0.0,
            default_learning_rate=defaults["learning_rate"],
            trigger=record.trigger_word,
            first_caption=record.captions[0],
            sameness=getattr(self.judge_, "sameness", None),
            poses=getattr(self.judge_, "poses", None),
            grid_prompt=self.judge_.held_out[0][0] if self.judge_ else None,
            grid_seed=SEEDS[0] if self.judge_ else None,  # both judges' grid picture
            unavailable=why,
        )
        self.stop: Callable[[], bool] = lambda: False
        self.drawn: Callable[[float], None] = lambda seconds: None
        self.seconds = 0.0

    @property
    def images(self) -> int:
        """Pictures drawn to judge a checkpoint at one strength (for the time left)."""
        return self.judge_.pictures_per_strength if self.judge_ else 0

    def judge(self, step: int, strength) -> tuple[dict[str, Scores], dict[str, str]]:
        """Scores and a held-out picture per strength, for the checkpoint being trained
        (`strength(s)`: a context with the training adapter at `s`). Checkpoints on the way
        are judged at full strength, the last at every strength of STRENGTHS: what a lower
        strength saves is asked of the LoRA the user gets (and it keeps the card's cost to
        about a tenth of a run)."""
        from engine.previews import data_url

        if self.judge_ is None:
            return {}, {}

        def draw(pairs: list[tuple[str, int]], s: float) -> list:
            started = time.monotonic()
            with strength(s):
                images = pictures.draw(self.model, pairs, self.stop)  # a cancel stops it
            for _ in images:
                self.drawn((time.monotonic() - started) / len(images))
            return images

        started = time.monotonic()
        last = step == self.ctx.total_steps
        cells = self.judge_.judge(draw, STRENGTHS if last else (1.0,))
        self.seconds += time.monotonic() - started
        return (
            {s: c.scores for s, c in cells.items()},
            {s: data_url(c.picture) for s, c in cells.items()},
        )

    def report(self, final: bool, points: list | None = None) -> TrainingReport:
        """From `points` (the job's checkpoints when not given)."""
        if points is None:
            points = self.jobs.current(self.job_id).checkpoints
        shift = getattr(self.judge_, "colour_shift", None)
        card = report.build(points, dataclasses.replace(self.ctx, colour_shift=shift), final)
        return card.model_copy(update={"seconds": round(self.seconds, 2)})
