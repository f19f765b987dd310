"""The report card's judge for real models (#28): CLIP embeddings (`LORAMINT_JUDGE_MODEL`, a
transformers CLIP model, loaded on first use on the device thread). Every score compares a
picture with the base model's own picture for the same prompt and seed, so a score means the
same on SD and SDXL:

- learned: a trigger picture is nearer the uploads (image embedding) than the base's, by MARGIN;
- follows_prompts: a held-out picture matches its context's words about as well as the base's;
- keeps_rest: a plain picture is still the base's picture (image similarity >= SAME);
- copies: a held-out picture is nearly an upload, or both seeds drew the same picture.

The thresholds are CLIP ViT-B/32 rules of thumb, not measured on many LoRAs: docs/training.md
says where the card can be wrong."""

from __future__ import annotations

from typing import Any

from PIL import Image

from engine.contract.errors import ApiError
from engine.contract.training import Scores
from engine.helper_models import HelperModel, from_cache_first
from engine.training.judge import SEEDS, Cell, Draw, share

MARGIN = 0.03  # nearer the uploads than the base picture by this much: it shows the subject
FOLLOW = 0.02  # a held-out picture may match its words this much worse than the base's
SAME = 0.85  # image similarity above which a plain prompt's picture is unchanged
COPY = 0.95  # image similarity above which a picture is an upload, or the other seed's
CONTEXTS = ("in a snowy forest", "as a watercolor painting")
PLAIN = ("a photo of a city street at night", "a bowl of fruit on a wooden table")


class JudgeUnavailable(ApiError):
    pass


def clip_loader(name: str) -> HelperModel[tuple[Any, Any]]:
    """The judge model, loaded on first use by `.get(device)`."""

    def load(device: str) -> tuple[Any, Any]:
        from transformers import CLIPModel, CLIPProcessor

        def both(**kw: Any) -> tuple[Any, Any]:
            model = CLIPModel.from_pretrained(name, **kw).to(device).eval()
            return model, CLIPProcessor.from_pretrained(name, **kw)

        return from_cache_first(both)

    return HelperModel(
        name,
        load,
        lambda why: JudgeUnavailable(
            f"the judge model {name!r} could not be loaded ({why}): set "
            "LORAMINT_JUDGE_MODEL to a CLIP model folder or a Hub id in the cache"
        ),
    )


class ClipJudge:
    def __init__(self, clip: tuple[Any, Any], name: str, trigger: str, captions, images) -> None:
        self.model, self.processor = clip
        self.name = f"CLIP ({name}), against the base model's own pictures"
        self.trigger = trigger
        self.learn_prompts = tuple(dict.fromkeys([trigger, captions[0]]))
        self.held_out = tuple((f"a photo of {trigger} {c}", c, "") for c in CONTEXTS)
        self.uploads = self._images(images)
        self.pictures_per_strength = (len(self.learn_prompts) + len(CONTEXTS)) * len(SEEDS) + 2
        self.sameness = None
        self._base: dict[tuple[str, int], Any] = {}
        self._context = self._texts(list(CONTEXTS))

    def _images(self, images: list[Image.Image]):
        import torch

        inputs = self.processor(images=images, return_tensors="pt").to(self.model.device)
        with torch.inference_mode():
            out = self.model.get_image_features(**inputs)
        out = getattr(out, "pooler_output", out)  # newer transformers wrap the features
        return torch.nn.functional.normalize(out.float(), dim=-1)

    def _texts(self, texts: list[str]):
        import torch

        inputs = self.processor(text=texts, return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = self.model.get_text_features(**inputs.to(self.model.device))
        out = getattr(out, "pooler_output", out)
        return torch.nn.functional.normalize(out.float(), dim=-1)

    def _pairs(self) -> list[tuple[str, int]]:
        prompts = [*self.learn_prompts, *(p for p, _, _ in self.held_out)]
        return [(p, s) for p in prompts for s in SEEDS] + [(p, SEEDS[0]) for p in PLAIN]

    def judge(self, draw: Draw, strengths: tuple[float, ...]) -> dict[str, Cell]:
        pairs = self._pairs()
        if not self._base:  # the base model's pictures: the same for every checkpoint
            self._base = dict(zip(pairs, self._images(draw(pairs, 0.0)), strict=True))
        return {f"{s:g}": self._cell(draw, s, pairs) for s in strengths}

    def _cell(self, draw: Draw, strength: float, pairs) -> Cell:
        pictures = draw(pairs, strength)
        emb = dict(zip(pairs, self._images(pictures), strict=True))
        near = lambda e: float((self.uploads @ e).max())  # noqa: E731
        learned = {
            p: [near(emb[p, s]) - near(self._base[p, s]) >= MARGIN for s in SEEDS]
            for p in self.learn_prompts
        }
        follows, copies = [], []
        for i, (prompt, _, _) in enumerate(self.held_out):
            words = self._context[i]
            for s in SEEDS:
                follows.append(
                    float(emb[prompt, s] @ words) >= float(self._base[prompt, s] @ words) - FOLLOW
                )
                copies.append(near(emb[prompt, s]) >= COPY)
            copies.append(float(emb[prompt, SEEDS[0]] @ emb[prompt, SEEDS[1]]) >= COPY)
        keeps = [float(emb[p, SEEDS[0]] @ self._base[p, SEEDS[0]]) >= SAME for p in PLAIN]
        best = max(learned, key=lambda p: (share(learned[p]), p == self.trigger))
        held = [p for p, _, _ in self.held_out]
        shown = [near(emb[p, s]) - near(self._base[p, s]) >= MARGIN for p in held for s in SEEDS]
        scores = Scores(
            learned=share(learned[best] + shown),
            follows_prompts=share(follows),
            keeps_rest=share(keeps),
            copies=share(copies),
            prompt=best if share(learned[best]) > 0 else None,
        )
        return Cell(scores, pictures[pairs.index((self.held_out[0][0], SEEDS[0]))])
