"""Train the built-in demo model from scratch: `python -m engine.demo_model.train`.

Stage 1 trains a small VAE on drawn shapes; stage 2 encodes a fixed, seeded dataset once and
trains the UNet and CLIP text encoder together on the cached posterior means; the EMA weights
are exported in fp16 to `engine/demo_model/weights/`, with the VAE's posterior pinned to its
mean so LoRA training (which encodes with a posterior sample) sees the latents the UNet learnt
on. The UNet predicts v on a zero-terminal-SNR schedule: with the usual schedule the noisiest
training step still leaks the image's mean, the model learns to read the background from it,
and at sampling time (pure noise) black backgrounds come out gray. Every stage checkpoints
(safetensors only) and resumes, and each step's batch depends only on (seed, step), so a
resumed run is the run that would have happened. Runs on CUDA when present.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel

from engine.demo_model import WEIGHTS_DIR
from engine.demo_model.checkpoint import Checkpoint, lr_at, step_rng
from engine.demo_model.components import SCHEDULE, build_components, save_model
from engine.demo_model.shapes import COLOURS, NAMED_SHAPES, NEW_COLOURS, SHAPES, draw, random_scene

log = logging.getLogger("demo-train")
NAMED_SHARE = 0.25  # of the dataset's scenes: the nonsense-named shapes
# How often each caption form is drawn; the rest of the time the caption is empty, for
# classifier-free guidance.
CAPTION_FORMS = {
    "full": 0.50,
    "no_background": 0.14,
    "colour_shape": 0.08,
    "shape": 0.10,
    "shape_background": 0.08,
}
# The options besides a stage's own that shaped a checkpoint; --export-only takes them from it.
RECIPE = ("seed", "vae_steps", "vae_lr", "vae_batch", "lr", "batch", "dataset", "ema")


def images_tensor(scenes) -> torch.Tensor:
    arr = np.stack([np.asarray(draw(s), dtype=np.float32) for s in scenes])
    return torch.from_numpy(arr).permute(0, 3, 1, 2) / 127.5 - 1.0


def train_vae(vae, args, work: Path, device) -> None:
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    ckpt = Checkpoint(work, "vae")
    meta = ckpt.load({"vae": vae}, opt)
    start = meta["step"] if meta else 0
    all_colours = tuple(COLOURS) + tuple(NEW_COLOURS)
    shapes = (*SHAPES, "star", *NAMED_SHAPES)
    vae.train()
    t0 = time.time()
    for step in range(start, args.vae_steps):
        rng = step_rng(args.seed, step)
        # The codec sees every colour and shape; only the UNet and text encoder are kept
        # ignorant of the new ones.
        scenes = [random_scene(rng, all_colours, shapes) for _ in range(args.vae_batch)]
        x = images_tensor(scenes).to(device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.vae_steps, args.vae_lr)
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(
            post.mean.shape, generator=torch.Generator().manual_seed(step)
        ).to(device)
        rec = vae.decode(z).sample
        loss = F.mse_loss(rec, x) + 1e-6 * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 50 == 0:
            log.info(
                "vae step %d/%d loss %.5f (%.2fs/step)",
                step + 1,
                args.vae_steps,
                loss.item(),
                (time.time() - t0) / (step + 1 - start),
            )
        if (step + 1) % args.ckpt_every == 0 or step + 1 == args.vae_steps:
            ckpt.save(step + 1, {"vae": vae}, opt)


def encode_dataset(vae, args, work: Path, device) -> dict:
    cache = work / "latents.safetensors"
    if cache.exists():
        data = load_file(cache)
        caps = json.loads((work / "captions.json").read_text())
        return {"latents": data["latents"], "captions": caps, "scale": float(data["scale"])}
    rng = random.Random(args.seed)
    scenes = [
        random_scene(rng, shapes=tuple(NAMED_SHAPES) if rng.random() < NAMED_SHARE else SHAPES)
        for _ in range(args.dataset)
    ]
    vae.eval()
    chunks = []
    with torch.no_grad():
        for i in range(0, len(scenes), 64):
            chunks.append(
                vae.encode(images_tensor(scenes[i : i + 64]).to(device)).latent_dist.mean.cpu()
            )
    latents = torch.cat(chunks)
    scale = 1.0 / float(latents.std())
    caps = [s.captions() for s in scenes]
    save_file({"latents": latents.contiguous(), "scale": torch.tensor(scale)}, cache)
    (work / "captions.json").write_text(json.dumps(caps))
    log.info("encoded %d images; latent scaling factor %.4f", len(scenes), scale)
    return {"latents": latents, "captions": caps, "scale": scale}


def pick_caption(rng: random.Random, forms: dict[str, str]) -> str:
    u = rng.random()
    for form, share in CAPTION_FORMS.items():
        if u < share:
            return forms[form]
        u -= share
    return ""


def caption_table(tok, captions: list[dict[str, str]]) -> tuple[dict[str, int], torch.Tensor]:
    """Every caption the data can draw, tokenized once: a row index per caption and the ids.
    Tokenizing each batch anew cost more than a GPU step."""
    unique = sorted({c for forms in captions for c in forms.values()} | {""})
    ids = tok(
        unique,
        padding="max_length",
        max_length=tok.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return {c: i for i, c in enumerate(unique)}, ids


def loss_weights(sched: DDPMScheduler, k: float) -> torch.Tensor:
    """Per-timestep weight of the v-loss: (snr + k) / (snr + 1). k = 1 is plain v-prediction,
    whose loss, counted in epsilon terms, grows as 1/snr at the noisy end; with gradients
    clipped, that starves the middle steps, where a triangle's sides are drawn (a v2 model
    re-noised halfway turned drawn triangles into tents). k = 0 weighs every step as epsilon
    prediction does, but gives the pure-noise step, where the background is chosen, nothing."""
    snr = sched.alphas_cumprod / (1 - sched.alphas_cumprod)
    return (snr + k) / (snr + 1)


def stages(meta: dict | None, start: int, args) -> list[dict]:
    """The runs that made a checkpoint, oldest first. Each went on from the one before with its
    own --steps (also the length of its learning-rate schedule), --noisy-weight and --batch, so
    running them in order with one --work remakes it. Checkpoints from before the weight
    existed were made in one plain v-loss run, and before --batch varied, at 32."""
    done = meta.get("stages", [{"from": 0, "steps": start, "noisy_weight": 1.0}]) if meta else []
    now = {"steps": args.steps, "noisy_weight": args.noisy_weight, "batch": args.batch}
    last = {"batch": 32, **done[-1]} if done else None
    if args.steps <= start or (last and {k: last[k] for k in now} == now):
        return done
    return [*done, {"from": start, **now}]


def train_unet(c: dict, data: dict, args, work: Path, device) -> None:
    unet, te, tok = c["unet"], c["text_encoder"], c["tokenizer"]
    ema_unet, ema_te = c["ema_unet"], c["ema_text_encoder"]
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    ckpt = Checkpoint(work, "unet")
    modules = {"unet": unet, "text_encoder": te, "ema_unet": ema_unet, "ema_text_encoder": ema_te}
    meta = ckpt.load(modules, opt)
    start = meta["step"] if meta else 0
    record = {"stages": stages(meta, start, args), "recipe": {k: vars(args)[k] for k in RECIPE}}
    noise_sched = DDPMScheduler(num_train_timesteps=1000, **SCHEDULE)
    latents = data["latents"] * data["scale"]
    weights = loss_weights(noise_sched, args.noisy_weight).to(device)
    row, table = caption_table(tok, data["captions"])
    live, ema = params, list(ema_unet.parameters()) + list(ema_te.parameters())
    unet.train()
    te.train()
    t0 = time.time()
    for step in range(start, args.steps):
        rng = step_rng(args.seed + 1, step)
        idx = [rng.randrange(len(latents)) for _ in range(args.batch)]
        caps = [pick_caption(rng, data["captions"][i]) for i in idx]
        x0 = latents[idx].to(device)
        g = torch.Generator().manual_seed(args.seed * 7 + step)
        noise = torch.randn(x0.shape, generator=g).to(device)
        t = torch.randint(0, 1000, (args.batch,), generator=g).to(device)
        noisy = noise_sched.add_noise(x0, noise, t)
        ids = table[[row[c] for c in caps]].to(device)
        pred = unet(noisy, t, te(ids)[0]).sample
        per_image = F.mse_loss(pred, noise_sched.get_velocity(x0, noise, t), reduction="none")
        loss = (per_image.mean(dim=(1, 2, 3)) * weights[t]).mean()
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, args.steps, args.lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema, live, 1 - decay)
        if (step + 1) % 50 == 0:
            log.info(
                "unet step %d/%d loss %.4f (%.2fs/step)",
                step + 1,
                args.steps,
                loss.item(),
                (time.time() - t0) / (step + 1 - start),
            )
        if (step + 1) % args.ckpt_every == 0 or step + 1 == args.steps:
            ckpt.save(step + 1, modules, opt, record)


def export(c: dict, scale: float, out: Path, args) -> None:
    stages_done = stages(json.loads((args.work / "unet.json").read_text()), args.steps, args)
    training = {
        "vae_steps": args.vae_steps,
        "steps": args.steps,
        "stages": stages_done,
        "batch": args.batch,
        "vae_batch": args.vae_batch,
        "lr": args.lr,
        "dataset": args.dataset,
        "named_share": NAMED_SHARE,
        "caption_forms": CAPTION_FORMS,
        "seed": args.seed,
    }
    save_model(c, scale, out, training)
    log.info("exported the demo model to %s", out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("demo-train"), help="checkpoints")
    ap.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--vae-steps", type=int, default=800)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=32, help="UNet batch")
    ap.add_argument("--vae-batch", type=int, default=32)
    ap.add_argument("--dataset", type=int, default=16000)
    ap.add_argument(
        "--noisy-weight",
        type=float,
        default=1.0,
        help="k in the v-loss weight (snr + k) / (snr + 1): 1 is plain v-prediction",
    )
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument(
        "--export-only",
        action="store_true",
        help="export the EMA weights of the latest checkpoints without training",
    )
    args = ap.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True  # a tiny model; TF32 rounding is noise here
    torch.manual_seed(args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    c = build_components()
    c["ema_unet"] = UNet2DConditionModel.from_config(c["unet"].config)
    c["ema_unet"].load_state_dict(c["unet"].state_dict())
    c["ema_text_encoder"] = CLIPTextModel(c["text_encoder"].config)
    c["ema_text_encoder"].load_state_dict(c["text_encoder"].state_dict())
    for k in ("vae", "unet", "text_encoder", "ema_unet", "ema_text_encoder"):
        c[k].to(device)
    if args.export_only:  # stop where the checkpoints are
        meta = json.loads((args.work / "unet.json").read_text())
        vars(args).update(meta.get("recipe", {}))
        args.vae_steps = json.loads((args.work / "vae.json").read_text())["step"]
        args.steps = meta["step"]
    started = time.time()
    train_vae(c["vae"], args, args.work, device)
    data = encode_dataset(c["vae"], args, args.work, device)
    train_unet(c, data, args, args.work, device)
    for k in ("vae", "ema_unet", "ema_text_encoder"):
        c[k].to("cpu").eval()
    export(c, data["scale"], args.out, args)
    log.info("done in %.0f s this session", time.time() - started)


if __name__ == "__main__":
    main()
