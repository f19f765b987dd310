"""What a training job keeps on the way and says at the end (#28): its checkpoints, where it
was resumed from, and the report card that judges it. Torch-free, shared by both processes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

STRENGTHS = (0.6, 0.8, 1.0)  # each checkpoint is judged at these LoRA strengths


class Scores(BaseModel):
    """0..1 each, read from pictures as a person would (docs/training.md, "The report card")."""

    learned: float = Field(description="Trigger prompts show the subject of the uploads.")
    follows_prompts: float = Field(
        description="Held-out prompts (the trigger in contexts the uploads lack) are followed."
    )
    keeps_rest: float = Field(description="Prompts without the trigger: LoRA on = LoRA off.")
    copies: float = Field(description="Held-out pictures that copy an upload (lower is better).")
    prompt: str | None = Field(
        None, description="The trigger prompt that drew the subject most often here, if any."
    )

    @property
    def overall(self) -> float:
        """One number to rank (step, strength) pairs: the four with equal weight."""
        return (self.learned + self.follows_prompts + self.keeps_rest + 1 - self.copies) / 4


class JobCheckpoint(BaseModel):
    step: int
    samples: list[int] = Field(
        default_factory=list, description="Indexes into the job's `samples` drawn at this step."
    )
    scores: dict[str, Scores] = Field(
        default_factory=dict, description="Strength (e.g. '0.8') -> its scores, once judged."
    )
    saved_as: str | None = Field(None, description="The LoRA file it was saved as, if any.")
    kept: bool = Field(
        True, description="False once dropped (keep_checkpoints): it can no longer be saved."
    )
    file: str | None = Field(None, description="Where the engine keeps it (internal name).")
    grid: dict[str, str] = Field(
        default_factory=dict,
        description="Strength -> a held-out prompt's picture (PNG data URL) at that strength.",
    )


class ResumedFrom(BaseModel):
    job_id: str
    step: int
    how: Literal["resume", "continue"] = "resume"
    fresh_optimizer: bool = Field(
        False, description="No training state was kept: it went on from the LoRA's weights."
    )
    lora: str | None = Field(None, description="continue: the LoRA file it went on from.")


class Recommended(BaseModel):
    step: int
    strength: float
    prompt: str = Field(description="A prompt that draws the subject with this LoRA.")


class Advice(BaseModel):
    text: str
    action: Literal["save", "continue", "retrain"] | None = None
    step: int | None = None
    strength: float | None = None
    steps: int | None = Field(None, description="continue: how many more steps.")
    settings: dict[str, float | bool] = Field(
        default_factory=dict,
        description="retrain: training options to change (e.g. learning_rate, "
        "prior_preservation); the page fills them in.",
    )


class TrainingReport(BaseModel):
    verdict: Literal["good", "undertrained", "overtrained"] | None = Field(
        description="None when the pictures could not be judged (see `unavailable`)."
    )
    recommended: Recommended | None = None
    advice: list[Advice] = Field(default_factory=list)
    scores: dict[str, dict[str, Scores]] = Field(
        default_factory=dict, description="Step -> strength -> scores."
    )
    judge: str = Field(description="What read the pictures (the demo reader, a CLIP model).")
    grid_prompt: str | None = Field(
        None, description="The held-out prompt of the checkpoints' `grid` pictures."
    )
    grid_seed: int | None = Field(None, description="The seed of the `grid` pictures.")
    unavailable: str | None = Field(None, description="Why there are no scores, if none.")
    final: bool = Field(False, description="False while the training still runs.")
    seconds: float = Field(0.0, description="Time spent drawing and reading its pictures.")
