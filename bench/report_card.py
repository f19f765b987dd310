"""Is the report card right? `python -m bench.report_card [--sets acceptance fresh1 ...]`

Trains on the demo model over HTTP, as a user would (a real engine process), and checks the
card's verdict and recommendation against the demo evaluator's reading of held-out prompts
(engine/demo_model/acceptance.py: stars in five colours on three backgrounds, and plain
prompts' colours), which the card's judge never draws (its own prompts and seeds differ):

- default: verdict, and the recommended (step, strength) within 5 points of the best
  checkpoint's evaluator score;
- overtrained (5x the rate, 2x the steps): verdict, and the recommendation >= 10 points above
  the last step at strength 1;
- undertrained (60 steps): verdict and "continue" advice; continued to the default total, within
  5 points of the default run;
- new user (three yellow stars on white, auto captions): the advice names what the uploads
  share, and the prompt "Use this LoRA" fills in draws a star in >= 80 % of 20 seeds.

Upload sets: `acceptance` (the acceptance stars) and `freshN` (stars of other sizes, rotations,
positions and colours, drawn from seed N; none of them tuned on; `freshNp`: the same posed as
the acceptance stars; `freshNx5`, `freshNpx5`: five uploads). Prints one JSON line per run
and the card's cost (its seconds over the job's).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import tempfile
import time
from pathlib import Path

from PIL import Image

from engine.demo_model.acceptance import PLAIN_CASES, STAR_CASES, TRIGGER, star_images
from engine.demo_model.reading import classify
from engine.demo_model.shapes import BACKGROUNDS, COLOURS, Scene, draw
from tests.engine_process import EngineProcess

USER = {"user_id": "bench"}


def upload_set(name: str) -> list[Image.Image]:
    if name == "acceptance":
        return star_images()
    if name == "yellow":  # the new user's: three yellow stars on white
        rng = random.Random(11)
        return [
            draw(Scene("yellow", "star", "white", 32 + rng.uniform(-4, 4), 32, rng.uniform(16, 21)))
            for _ in range(3)
        ]
    # `freshNp`: the same colours and backgrounds as `freshN`, posed as the acceptance stars
    # (upright, radius 20, within 3 px of the centre): what pose costs, set by set. `xK`: K
    # uploads instead of 3 (other colours and backgrounds then).
    m = re.fullmatch(r"fresh(\d+)(p?)(?:x(\d))?", name)
    if m is None:
        raise SystemExit(f"unknown upload set {name!r}")
    rng, posed, count = random.Random(int(m[1])), bool(m[2]), int(m[3] or 3)
    out = []
    for colour, ground in zip(
        rng.sample(list(COLOURS), count), rng.choices(list(BACKGROUNDS), k=count), strict=True
    ):
        cx, cy, r = 32 + rng.uniform(-7, 7), 32 + rng.uniform(-7, 7), rng.uniform(14, 23)
        angle = rng.uniform(-35, 35)
        if posed:
            cx, cy, r, angle = 32 + (cx - 32) * 3 / 7, 32 + (cy - 32) * 3 / 7, 20, 0
        scene = Scene(colour, "star", ground, cx, cy, r)
        out.append(draw(scene).rotate(angle, fillcolor=BACKGROUNDS[ground]))
    return out


def pngs(images: list[Image.Image]) -> list[tuple[str, tuple[str, bytes, str]]]:
    files = []
    for i, im in enumerate(images):
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        files.append(("images", (f"{i}.png", buf.getvalue(), "image/png")))
    return files


def captions(c, images, auto: bool) -> list[str]:
    if auto:
        r = c.post("/caption", params=USER, files=pngs(images), data={"trigger_word": TRIGGER})
        return r.json()["captions"]
    return [f"a {r.colour} {TRIGGER} on a {r.background} background" for r in map(classify, images)]


def train(c, images, name: str, caps: list[str], **form) -> dict:
    data = {"name": name, "trigger_word": TRIGGER, "captions": caps, "overwrite": "true", **form}
    job = c.post("/train-lora", params=USER, files=pngs(images), data=data).json()["job"]
    return wait(c, job["id"])


def wait(c, job_id: str) -> dict:
    while True:
        job = c.get(f"/jobs/{job_id}", params=USER).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)


def lora_of(c, job: dict, step: int) -> str:
    """The LoRA file at `step` of the job (saved from its checkpoint if it is not the last)."""
    if step == job["total_steps"]:
        return job["result"]["file"]
    name = f"{job['params']['name']}-{step}"
    body = {"name": name, "overwrite": True}
    return c.post(f"/jobs/{job['id']}/checkpoints/{step}/save", params=USER, json=body).json()[
        "file"
    ]


def evaluator(c, lora: str, strength: float, parts: dict | None = None) -> float:
    """The acceptance evaluator's points (0-100): the mean of stars, their colour (the one the
    prompt asks for) and plain prompts' colour; `parts` gets the three shares."""
    stars = [(readings(c, lora, strength, p, [s])[0], colour) for colour, p, s in STAR_CASES]
    plain = [readings(c, lora, strength, p, [s])[0].colour == col for col, p, s in PLAIN_CASES]
    shares = {
        "stars": sum(r.shape == "star" for r, _ in stars) / len(stars),
        "star_colour": sum(r.colour == colour for r, colour in stars) / len(stars),
        "plain_colour": sum(plain) / len(plain),
    }
    if parts is not None:
        parts.update(shares)
    return round(100 * sum(shares.values()) / 3, 1)


def card_cost(job: dict) -> float:
    return round(job["report"]["seconds"] / job["result"]["training_seconds"], 3)


def scored(c, job: dict) -> dict:
    rec = job["report"]["recommended"]
    kept = [p["step"] for p in job["checkpoints"] if p["kept"]]
    final: dict[str, float] = {}
    at_one = {
        step: evaluator(c, lora_of(c, job, step), 1.0, final if step == kept[-1] else None)
        for step in kept
    }
    recommended = evaluator(c, lora_of(c, job, rec["step"]), rec["strength"])
    return {
        "final_parts": final,
        "verdict": job["report"]["verdict"],
        "recommended": [rec["step"], rec["strength"]],
        "evaluator_at_1": at_one,
        "evaluator_recommended": recommended,
        "best_minus_recommended": round(max(at_one.values()) - recommended, 1),
        "card_cost": card_cost(job),
        "advice": [a["text"] for a in job["report"]["advice"]],
        "scores": {
            step: {s: [round(v, 2) for k, v in sc.items() if k != "prompt"] for s, sc in by.items()}
            for step, by in job["report"]["scores"].items()
        },
    }


def readings(c, lora: str, strength: float, prompt: str, seeds) -> list:
    """What the prompt draws with the LoRA, read, one picture per seed."""
    out = []
    for seed in seeds:
        body = {"prompt": prompt, "seed": seed, "loras": [{"file": lora, "strength": strength}]}
        image = c.post("/generate", params=USER, json=body).json()["images"][0]
        raw = c.get(image["url"].split("?")[0], params=USER).content
        out.append(classify(Image.open(io.BytesIO(raw))))
    return out


def run_set(c, name: str, variants: list[str]) -> None:
    images = upload_set(name)
    caps = captions(c, images, auto=name == "yellow")
    default = None
    for variant in variants:
        tag = f"{name}-{variant}"
        if variant == "default":
            default = job = train(c, images, tag, caps)
            out = scored(c, job)
        elif variant == "overtrained":
            job = train(c, images, tag, caps, learning_rate=str(5 * 1.5e-3), steps=str(2 * 1000))
            out = scored(c, job)
            out["recommended_minus_final"] = round(
                out["evaluator_recommended"] - out["evaluator_at_1"][job["total_steps"]], 1
            )
        elif variant == "undertrained":
            job = train(c, images, tag, caps, steps="60")
            out = {"verdict": job["report"]["verdict"], "advice": job["report"]["advice"]}
            more = next(a["steps"] for a in job["report"]["advice"] if a["action"] == "continue")
            total = default["total_steps"] if default else 1000
            r = c.post(
                f"/loras/{job['result']['file']}/continue",
                params=USER,
                data={"steps": str(total - 60)},
            )
            went_on = wait(c, r.json()["job_id"])
            out["advised_steps"] = more
            out["continued_to"] = went_on["total_steps"]
            out["evaluator_continued"] = evaluator(c, went_on["result"]["file"], 1.0)
        else:  # "user": what "Use this LoRA" fills in ("user-noprior": as the advice says)
            extra = {"prior_preservation": "false"} if variant == "user-noprior" else {}
            job = train(c, images, tag, caps, **extra)
            rec = job["report"]["recommended"]
            lora = lora_of(c, job, rec["step"])
            out = scored(c, job)
            out["captions"] = caps
            out["use_prompt"] = rec["prompt"]
            use = readings(c, lora, rec["strength"], rec["prompt"], range(500, 520))
            out["use_prompt_stars"] = sum(r.shape == "star" for r in use) / 20
            # The uploads' own colour, named in their caption: read as a person would.
            own = readings(c, lora, rec["strength"], caps[0], range(600, 620))
            out["caption_yellow_stars"] = sum(r == ("yellow", "star", "white") for r in own) / 20
            out["caption_reads"] = sorted({f"{r.colour} {r.shape}" for r in own})
        print(json.dumps({"set": name, "variant": variant, **out}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", default=["acceptance", "fresh1", "fresh2"])
    ap.add_argument("--variants", nargs="+", default=["default", "overtrained", "undertrained"])
    ap.add_argument("--user-variants", nargs="+", default=["user", "user-noprior"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = EngineProcess("builtin:demo", Path(tmp) / "data", Path(tmp) / "engine.log")
        engine.start()
        try:
            with engine.client(timeout=600) as c:
                for name in args.sets:
                    users = args.user_variants
                    run_set(c, name, users if name == "yellow" else args.variants)
        finally:
            engine.stop()


if __name__ == "__main__":
    main()
