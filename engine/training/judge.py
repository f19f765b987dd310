"""Reading a LoRA's pictures as a person would, for the report card (#28, report.py).

At each checkpoint the judge draws a few prompts with the training adapter at each strength
and scores what it sees: `learned` (trigger prompts show the subject of the uploads),
`follows_prompts` (the trigger in colours and backgrounds the uploads don't have: followed?),
`keeps_rest` (prompts without the trigger: the same picture as with the LoRA off) and `copies`
(held-out pictures that come out in an upload's own colours, or alike whatever the seed).

The built-in demo model has its own reader (engine/demo_model/reading.py: shape, colour and
background, as its evaluator reads them), so the card is checked for real in CI. Other models
get no scores yet: the report says so and the samples still show."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.contract.training import Scores
from engine.demo_model import MODEL_ID as DEMO_ID
from engine.demo_model.reading import Pose, Reading, classify, pose
from engine.demo_model.shapes import BACKGROUNDS, COLOURS, SIZE

# ([(prompt, seed)...], strength) -> the pictures, the training adapter at that strength
Draw = Callable[[list[tuple[str, int]], float], list[Image.Image]]
SEEDS = (9001, 9002)  # seeds no sample and no training step uses
ALIKE = 6.0  # mean RGB difference under which two seeds' pictures are the same picture
OTHER_SHAPES = ("circle", "square")
# Uploads posed further apart than this differ in pose (the acceptance stars: 0.7 px, 0.5
# degrees and 3.6 px; stars within 3 px of the centre each: up to 8.5 px; fresh upload sets:
# 4-7 px, 7-38 degrees and 6-16 px).
SIZE_SPREAD = 2.5  # px of the shape's reach
TURN_SPREAD = 10.0  # degrees, a star's points repeating every 72
PLACE_SPREAD = 9.0  # px between centroids


@dataclass(frozen=True)
class Subject:
    """What the uploads show, as the reader sees them."""

    shape: str
    colours: tuple[str, ...]
    backgrounds: tuple[str, ...]
    poses: tuple[Pose, ...]

    @classmethod
    def of(cls, images: list[Image.Image]) -> Subject:
        readings = [classify(im) for im in images]
        shape = Counter(r.shape for r in readings).most_common(1)[0][0]
        return cls(
            shape,
            tuple(dict.fromkeys(r.colour for r in readings)),
            tuple(dict.fromkeys(r.background for r in readings)),
            tuple(p for p in map(pose, images) if p is not None),
        )

    def pose_spread(self) -> str | None:
        """How the uploads' poses differ, in words; None if they are posed alike (as the
        acceptance stars: one size, upright, within a few pixels of each other)."""
        ps = self.poses
        if len(ps) < 2:
            return None
        words = []
        reach = [p.reach for p in ps]
        if max(reach) - min(reach) > SIZE_SPREAD:
            words.append(
                f"sizes ({2 * min(reach) / SIZE:.0%} to {2 * max(reach) / SIZE:.0%} "
                "of the picture across)"
            )
        turns = [p.turn for p in ps if p.turn is not None]
        turned = max((abs((a - b + 36) % 72 - 36) for a in turns for b in turns), default=0)
        if turned > TURN_SPREAD:
            words.append(f"angles ({turned:.0f} degrees apart)")
        apart = max(np.hypot(a.x - b.x, a.y - b.y) for a in ps for b in ps)
        if apart > PLACE_SPREAD:
            words.append(f"places ({apart / SIZE:.0%} of the picture apart)")
        if not words:
            return None
        thing = self.shape if self.shape != "none" else "subject"
        listed = ", ".join(words[:-1]) + (" and " if len(words) > 1 else "") + words[-1]
        return f"show the {thing} at different {listed}"


@dataclass
class Cell:
    """One (checkpoint, strength): its scores and the first held-out picture, for the grid."""

    scores: Scores
    picture: Image.Image


class DemoJudge:
    name = "the demo model's reader (shape, colour, background)"

    def __init__(self, trigger: str, captions: list[str], images: list[Image.Image]) -> None:
        self.subject = Subject.of(images)
        self.trigger = trigger
        # The bare trigger word first: it is what a hurried user types.
        self.learn_prompts = tuple(dict.fromkeys([trigger, captions[0]]))
        self.held_out = self._held_out()
        self.plain = tuple(
            f"a {c} {shape} on a {b} background"
            for c, shape, b in zip(
                self._others(COLOURS, self.subject.colours),
                OTHER_SHAPES,
                ("white", "black"),
                strict=False,
            )
        )
        self._base: dict[tuple[str, int], Reading] = {}
        self.colour_shift: tuple[str, str] | None = None  # (asked, drawn) at full strength
        prompts = len(self.learn_prompts) + len(self.held_out)
        self.pictures_per_strength = prompts * len(SEEDS) + len(self.plain)

    @property
    def sameness(self) -> str | None:
        """What every upload shares, in words (None if they differ in colour and ground)."""
        s = self.subject
        colour = s.colours[0] if len(s.colours) == 1 else None
        ground = s.backgrounds[0] if len(s.backgrounds) == 1 else None
        if colour is None and ground is None:
            return None
        thing = f"{colour + ' ' if colour else ''}{s.shape if s.shape != 'none' else 'subject'}"
        return f"all show a {thing}" + (f" on a {ground} background" if ground else "")

    @property
    def poses(self) -> str | None:
        return self.subject.pose_spread()

    @staticmethod
    def _others(names, used) -> list[str]:
        return [n for n in names if n not in used] or list(names)

    def _held_out(self) -> tuple[tuple[str, str, str], ...]:
        """(prompt, colour, background): the trigger in two contexts the uploads lack."""
        colours = self._others(COLOURS, self.subject.colours)
        grounds = self._others(BACKGROUNDS, self.subject.backgrounds)
        pairs = [(colours[0], grounds[0]), (colours[-1], grounds[-1])]
        return tuple((f"a {c} {self.trigger} on a {b} background", c, b) for c, b in pairs)

    def judge(self, draw: Draw, strengths: tuple[float, ...]) -> dict[str, Cell]:
        """This checkpoint at each strength, each drawn in one batch."""
        if not self._base:  # the LoRA off: the same for every checkpoint
            pictures = draw(self._plain_pairs, 0.0)
            self._base = dict(zip(self._plain_pairs, map(classify, pictures), strict=True))
        self._full: tuple[dict[str, list[bool]], float] | None = None
        cells = {f"{s:g}": self._cell(draw, s) for s in sorted(strengths, reverse=True)}
        return {f"{s:g}": cells[f"{s:g}"] for s in strengths}

    @staticmethod
    def _pairs(prompts) -> list[tuple[str, int]]:
        return [(p, seed) for p in prompts for seed in SEEDS]

    @property
    def _plain_pairs(self) -> list[tuple[str, int]]:
        """One seed each: the LoRA seldom changes a plain prompt's picture on one seed and
        not another, and this keeps the card's cost down."""
        return [(p, SEEDS[0]) for p in self.plain]

    def _cell(self, draw: Draw, strength: float) -> Cell:
        """Below full strength, what full strength settled is not drawn again (a weaker LoRA
        does not draw a subject the full one can't, nor change plain prompts it kept): a
        tenth fewer pictures."""
        held = [p for p, _, _ in self.held_out]
        full_learned, full_keeps = self._full or ({}, 0.0)
        learn = [p for p in self.learn_prompts if any(full_learned.get(p, [True]))]
        plain = [] if full_keeps == 1.0 else self._plain_pairs
        pairs = self._pairs([*learn, *held]) + plain
        pictures = dict(zip(pairs, draw(pairs, strength), strict=True))
        read = {pair: classify(im) for pair, im in pictures.items()}
        learned = {
            p: [p in learn and read[p, s].shape == self.subject.shape for s in SEEDS]
            for p in self.learn_prompts
        }
        follows, copies = self._named_colour(read, strength), []
        looks = {(c, b) for c in self.subject.colours for b in self.subject.backgrounds}
        for prompt, colour, ground in self.held_out:
            for seed in SEEDS:
                r = read[prompt, seed]
                follows.append(((r.colour == colour) + (r.background == ground)) / 2)
                copies.append((r.colour, r.background) in looks)
            copies.append(_alike([pictures[prompt, s] for s in SEEDS]))
        keeps = [read[pair] == self._base[pair] for pair in plain] or [True]
        if self._full is None:
            self._full = (learned, share(keeps))
        best = max(learned, key=lambda p: (share(learned[p]), p == self.trigger))
        # The subject in every trigger picture: the best way to call it up, and the contexts
        # the uploads lack (a LoRA that draws it only on their own colours has half learned).
        shown = [read[p, s].shape == self.subject.shape for p in held for s in SEEDS]
        scores = Scores(
            learned=share(learned[best] + shown),
            follows_prompts=round(float(np.mean(follows)), 4),
            keeps_rest=share(keeps),
            copies=share(copies),
            prompt=best if share(learned[best]) > 0 else None,
        )
        return Cell(scores, pictures[held[0], SEEDS[0]])

    def _named_colour(self, read: dict, strength: float) -> list[float]:
        """A trigger prompt that names a colour (the first caption, usually) must draw the
        subject in it: a LoRA that turns yellow stars orange does not follow its prompt.
        Remembers what it drew instead at full strength (`colour_shift`), for the advice."""
        prompt = self.learn_prompts[-1]
        asked = next((w for w in prompt.split() if w in COLOURS), None)
        if asked is None or (prompt, SEEDS[0]) not in read:  # not drawn at this strength
            return []
        drawn = [read[prompt, s].colour for s in SEEDS if read[prompt, s].shape != "none"]
        hits = [c == asked for c in drawn]
        if strength == 1.0:
            missed = Counter(c for c in drawn if c != asked).most_common(1)
            wrong = bool(missed) and share(hits) < 0.5
            self.colour_shift = (asked, missed[0][0]) if wrong else None
        return [float(h) for h in hits]


def _alike(pictures: list[Image.Image]) -> bool:
    a, b = (np.asarray(p.convert("RGB"), dtype=float) for p in pictures[:2])
    return bool(np.abs(a - b).mean() < ALIKE)


def share(hits: list[bool]) -> float:
    return round(sum(hits) / max(1, len(hits)), 4)


def judge_for(model, trigger: str, captions: list[str], images, clip=None):
    """The judge for this loaded model, or (None, why not). `clip`: the engine's
    `clip_judge.clip_loader`, which loads the judge model on first use."""
    from engine.training.clip_judge import ClipJudge, JudgeUnavailable

    if model.info.model == DEMO_ID:
        return DemoJudge(trigger, captions, images), None
    if clip is None:
        return None, "no judge model is set (LORAMINT_JUDGE_MODEL)"
    try:
        loaded = clip.get(model.info.device)
        return ClipJudge(loaded, clip.name, trigger, captions, images), None
    except JudgeUnavailable as exc:
        return None, exc.message
