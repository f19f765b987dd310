"""The report card's verdict, recommendation and advice, from the judged checkpoints (#28).
Pure: the scores come from judge.py; this only reads them, so it is tested with given figures.

A (step, strength) is ranked by `Scores.overall`. The verdict: `overtrained` when the last
step at full strength changes prompts without the trigger and draws no subject (a rate too
high), or when an earlier step or a lower strength scores 10 points above it; `undertrained`
when no checkpoint draws the subject from half its trigger prompts; else `good`."""

from __future__ import annotations

from dataclasses import dataclass

from engine.contract.training import Advice, JobCheckpoint, Recommended, Scores, TrainingReport

LEARNED = 0.5  # below this share of trigger pictures showing the subject: undertrained
# An earlier step or lower strength this much above the last: overtrained. A score reads 4
# pictures, so one picture read otherwise moves the overall ~6 points: less is noise.
BETTER = 0.1
KEEPS = 0.9  # plain prompts unchanged at least this often, or the strength is too high
POSED = 0.9  # uploads posed apart, and the subject drawn less often than this: say so
# Measured on the demo model's five fresh upload sets (engine/demo_model/README.md).
POSED_GAIN = (
    "on five test sets, five such images drew it in 90-100 % of trigger prompts; three or "
    "five posed apart, in 10-70 %."
)


@dataclass(frozen=True)
class Context:
    judge: str
    total_steps: int
    trigger: str
    first_caption: str
    sameness: str | None = None  # what every upload shares, in words, if anything
    poses: str | None = None  # how the uploads' poses differ, in words (the demo reader's)
    grid_prompt: str | None = None
    grid_seed: int | None = None
    colour_shift: tuple[str, str] | None = None  # (asked, drawn) by a trigger prompt
    default_steps: int = 0  # the model's default for this many images
    learning_rate: float = 0.0  # the run's
    default_learning_rate: float = 0.0  # the model's, for these images
    unavailable: str | None = None


def build(points: list[JobCheckpoint], ctx: Context, final: bool) -> TrainingReport:
    cells = [(c.step, float(s), sc) for c in points if c.kept for s, sc in c.scores.items()]
    if not cells:
        return TrainingReport(
            verdict=None, judge=ctx.judge, unavailable=ctx.unavailable, final=final
        )
    last = max(step for step, _, _ in cells)
    at = {(step, s): sc for step, s, sc in cells}
    best_step, best_s, best = max(
        cells, key=lambda c: (round(c[2].overall, 3), c[0] == last, c[1], c[0])
    )
    end = at.get((last, 1.0), best)
    prompt = best.prompt or ctx.first_caption
    advice: list[Advice] = []
    better = (best_step, best_s) != (last, 1.0) and best.overall - end.overall >= BETTER
    broken = _broken(end)
    if broken:  # it changes everything and draws nothing: too strong, not too short
        verdict = "overtrained"
        advice.append(
            _use(best_step, best_s, best, end) if better and not _broken(best) else _slower(ctx)
        )
    elif max(sc.learned for _, _, sc in cells) < LEARNED:
        verdict = "undertrained"
        # Up to the model's default for these images, at least half as many again.
        more = max(ctx.default_steps - ctx.total_steps, ctx.total_steps // 2, 100)
        more = round(more / 50) * 50
        advice.append(
            Advice(
                text=f"It has not learned the subject yet: fewer than half of the trigger prompts "
                f"draw it. Continue {more} more steps.",
                action="continue",
                steps=more,
            )
        )
    elif better:
        verdict = "overtrained"
        advice.append(_use(best_step, best_s, best, end))
    else:
        verdict = "good"
        advice.append(
            Advice(
                text=f"Use step {best_step} at strength {best_s:g}.",
                action="save" if best_step != last else None,
                step=best_step,
                strength=best_s,
            )
        )
    if best.prompt and best.prompt != ctx.trigger:
        advice.append(
            Advice(
                text=f"The trigger word alone doesn't draw it yet; a prompt like {prompt!r} does. "
                "Captions that describe everything but the subject teach the bare word better."
            )
        )
    if ctx.sameness and (best.follows_prompts < 0.9 or best.copies > 0.1):
        advice.append(
            Advice(
                text=f"Your images {ctx.sameness}, so the LoRA learns that look with the "
                "subject. To draw it in other colours and settings: add images that differ in "
                "those, describe them in each caption, or train again with prior preservation "
                "off (Advanced settings).",
                action="retrain",
                settings={"prior_preservation": False},
            )
        )
    if ctx.poses and best.learned < POSED and not broken:
        advice.append(_pose_advice(ctx.poses))
    if ctx.colour_shift and not broken:
        asked, drawn = ctx.colour_shift
        advice.append(
            Advice(
                text=f"Asked for {asked}, it draws {drawn}: the prior term pulls the subject's "
                "colour toward what the base model draws for the same words. Train again with "
                "prior preservation off (Advanced settings): on images of one colour that keeps "
                "the colour, though prompts without the trigger change a little more.",
                action="retrain",
                settings={"prior_preservation": False},
            )
        )
    advice += _strength_advice(at, best_step)
    return TrainingReport(
        verdict=verdict,
        recommended=Recommended(step=best_step, strength=best_s, prompt=prompt),
        advice=advice,
        scores={str(c.step): c.scores for c in points if c.scores},
        judge=ctx.judge,
        grid_prompt=ctx.grid_prompt,
        grid_seed=ctx.grid_seed,
        final=final,
    )


def _broken(sc: Scores) -> bool:
    return sc.keeps_rest < KEEPS and sc.learned < LEARNED


def _pose_advice(poses: str) -> Advice:
    """Only the demo model's reader measures poses: a small model's limit, measured in
    engine/demo_model/README.md ("Why fresh upload sets fall short")."""
    return Advice(
        text=f"Your images {poses}. This small model learns each image's pose with its colours "
        "and blurs the poses together for colours and backgrounds it has not seen. Train again "
        "on images posed alike (one size, upright, centred), in different colours and on "
        f"different backgrounds: {POSED_GAIN}",
        action="retrain",
    )


def _slower(ctx: Context) -> Advice:
    """A run that broke the model: a rate above the model's default goes back to it (on the
    demo model twice the default breaks it too, so "half" would not be enough); the default
    itself is halved."""
    rate, default = ctx.learning_rate, ctx.default_learning_rate
    to, why = (default, "this model's default") if rate > default * 1.01 else (rate / 2, "half")
    said = f" ({rate:g})" if rate else ""
    return Advice(
        text="It changes prompts without the trigger word too and doesn't draw the subject: the "
        f"learning rate{said} is too high for these images. Train again at {to:.3g} ({why}).",
        action="retrain",
        settings={"learning_rate": float(f"{to:.3g}")},
    )


def _use(step: int, strength: float, best: Scores, end: Scores) -> Advice:
    return Advice(
        text=f"Step {step} at strength {strength:g} scores "
        f"{round(100 * (best.overall - end.overall))} points above the last step at full "
        f"strength: use step {step} at {strength:g}. Next time, train fewer steps or at a "
        "lower learning rate.",
        action="save",
        step=step,
        strength=strength,
    )


def _strength_advice(at: dict[tuple[int, float], Scores], step: int) -> list[Advice]:
    """Plain prompts change above some strength: say where to stay."""
    mine = sorted((s, sc) for (st, s), sc in at.items() if st == step)
    safe = [s for s, sc in mine if sc.keeps_rest >= KEEPS]
    if not safe or safe[-1] == mine[-1][0]:
        return []
    top = safe[-1]
    return [
        Advice(
            text=f"Keep the LoRA at or below {top:g}: above it, prompts without the trigger word "
            "change too.",
            strength=top,
        )
    ]
