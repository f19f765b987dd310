"""Images from images over HTTP on tiny SD and SDXL pipelines: img2img, inpainting, outpainting
and the hires-fix pass run on pipelines made from the loaded components, with the LoRA stack,
and record what they started from. (What they draw is judged on the demo model:
test_images_from_images.py.)"""

from __future__ import annotations

import base64
import hashlib
import io

import numpy as np
import torch
from PIL import Image, ImageFilter

from tests.helpers import ALICE, FAST, encoded, generate, pixels, wait_job


def noise_picture(size=(64, 64), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def upload(client, image: Image.Image) -> str:
    r = client.post("/images", params=ALICE, files={"image": ("in.png", encoded(image))})
    assert r.status_code == 201, r.text
    return r.json()["file"]


def data_url(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(encoded(image)).decode()


def test_img2img_starts_from_the_image_and_records_it(client, upload_lora):
    picture = noise_picture((72, 64))
    file = upload(client, picture)
    body = generate(client, seed=3, init_image=file, strength=0.5)
    image = body["images"][0]
    out = pixels(client, image)
    assert out.shape == (64, 72, 3)  # the image's size
    params = image["parameters"]
    assert params["mode"] == "img2img" and params["init_image"] == file
    assert params["strength"] == 0.5 and params["width"] == 72
    stored = client.get(f"/images/{file}", params=ALICE).content  # the gallery's own file
    assert params["init_image_sha256"] == hashlib.sha256(stored).hexdigest()
    listed = client.get("/images", params=ALICE).json()["images"]
    text = next(i for i in listed if i["file"] == image["file"])["parameters_text"]
    assert "Denoising strength: 0.5" in text
    # Deterministic by seed; the same picture sent inline draws the same image.
    again = generate(client, seed=3, init_image=data_url(picture), strength=0.5)
    assert np.array_equal(out, pixels(client, again["images"][0]))
    assert again["images"][0]["parameters"]["init_image"] == "inline"
    # The strength is used (how close it stays is judged on the demo model); the LoRA applies.
    by = {s: generate(client, seed=3, steps=10, init_image=file, strength=s) for s in (0.3, 1.0)}
    touch, full = (pixels(client, by[s]["images"][0]) for s in (0.3, 1.0))
    assert np.abs(touch - full).mean() > 0.5
    lora = [{"file": upload_lora("style_a"), "strength": 1.0}]
    styled = generate(client, seed=3, init_image=file, strength=0.5, loras=lora)
    assert np.abs(pixels(client, styled["images"][0]) - out).mean() > 0.5


def test_inpainting_changes_only_the_mask_with_the_lora(client, upload_lora):
    picture = noise_picture((64, 64), seed=1)
    file = upload(client, picture)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (32, 16, 64, 48))
    lora = [{"file": upload_lora("style_a"), "strength": 1.0}]
    ask = {"seed": 4, "init_image": file, "mask": data_url(mask), "mask_blur": 2}
    for extra in ({}, {"mask_crop": True}):
        plain = pixels(client, generate(client, **ask, **extra)["images"][0])
        styled = pixels(client, generate(client, **ask, **extra, loras=lora)["images"][0])
        outside = np.asarray(mask.filter(ImageFilter.GaussianBlur(2))) == 0
        src = np.asarray(picture, np.int16)
        for out in (plain, styled):
            assert np.abs(out - src)[outside].max() == 0
            assert np.abs(out - src)[~outside].mean() > 5
        assert np.abs(styled - plain)[~outside].mean() > 0.5  # the LoRA drew there


def test_outpainting_and_hires_fix_give_the_final_size(client):
    file = upload(client, noise_picture((64, 64), seed=2))
    wide = generate(client, seed=1, init_image=file, extend={"left": 16, "top": 8})
    params = wide["images"][0]["parameters"]
    assert params["extend"] == {"left": 16, "right": 0, "top": 8, "bottom": 0}
    out = pixels(client, wide["images"][0])
    assert out.shape == (72, 80, 3)
    src = np.asarray(Image.open(io.BytesIO(encoded(noise_picture((64, 64), seed=2)))), np.int16)
    assert np.array_equal(out[8:, 16:], src)
    # Its seed drawn, then given back: the same picture (the new area's noise comes from it).
    drawn = generate(client, init_image=file, extend={"right": 16})["images"][0]
    again = generate(client, init_image=file, extend={"right": 16}, seed=drawn["seed"])
    assert np.array_equal(pixels(client, drawn), pixels(client, again["images"][0]))
    big = generate(client, seed=1, upscale=1.5, num_images=2)
    assert [pixels(client, im).shape for im in big["images"]] == [(96, 96, 3)] * 2
    assert big["parameters"]["upscale"] == 1.5 and big["parameters"]["width"] == 96
    # Upscaling an image of your own: no img2img pass first unless a strength is given.
    up = generate(client, seed=1, init_image=file, upscale=2.0)
    assert up["images"][0]["parameters"]["mode"] == "upscale"
    refined = pixels(client, up["images"][0])
    assert refined.shape == (128, 128, 3)
    # Its colours are the enlarged picture's (the tiny random model's refine alone drifts far):
    # each channel's levels, sorted, within a level or two of the Lanczos enlargement's.
    enlarged = noise_picture((64, 64), seed=2).resize((128, 128), Image.Resampling.LANCZOS)
    spread = np.sort(refined.reshape(-1, 3), axis=0) - np.sort(
        np.asarray(enlarged, np.int16).reshape(-1, 3), axis=0
    )
    assert np.abs(spread).mean() < 2, np.abs(spread).mean(axis=0)


def test_a_generation_job_from_an_image_counts_both_passes(client):
    file = upload(client, noise_picture((64, 64), seed=3))
    body = {"prompt": "a red fox", **FAST, "steps": 4, "seed": 2, "init_image": file}
    r = client.post(
        "/generate", params={**ALICE, "async": "true"}, json={**body, "strength": 0.6, "upscale": 2}
    )
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    # 0.6 of 4 steps from the image, then 0.35 of 4 on the enlarged one: 2 + 1.
    assert job["total_steps"] == 3 and job["step"] == 3
    assert job["result"]["images"][0]["parameters"]["height"] == 128


def test_pipelines_made_from_the_loaded_model_share_its_weights():
    """No second copy of the weights: every module of the img2img and inpainting pipelines
    is the loaded pipeline's own object, for SD and SDXL."""
    from engine.editing.passes import derived
    from engine.runtime import LoadedModel
    from tests.tiny import tiny_sd, tiny_sdxl

    for pipe in (tiny_sd(), tiny_sdxl()):
        model = LoadedModel(pipe, None, None, None)  # type: ignore[arg-type]
        for kind in ("img2img", "inpaint"):
            made = derived(model, kind)
            assert derived(model, kind) is made  # made once
            for name, part in pipe.components.items():
                if isinstance(part, torch.nn.Module):
                    assert made.components[name] is part, (kind, name)


def test_an_inpainting_checkpoint_is_used_natively(tmp_path):
    """A 9-channel UNet (latents, mask, masked picture) loaded as the model: it inpaints with
    its own channels, and text to image and img2img run through it with the whole picture
    masked (a plain pipeline would fail on its UNet)."""
    from diffusers import StableDiffusionInpaintPipeline

    from tests.engine_process import EngineProcess
    from tests.tiny import tiny_sd

    folder = tmp_path / "inpainting-model"
    StableDiffusionInpaintPipeline(**tiny_sd(in_channels=9).components).save_pretrained(
        folder, safe_serialization=True
    )
    eng = EngineProcess(str(folder), tmp_path / "data", tmp_path / "engine.log").start()
    try:
        with eng.client() as c:
            text = pixels(c, generate(c, seed=1)["images"][0])
            assert text.shape == (64, 64, 3) and text.std() > 0
            picture = noise_picture(seed=6)
            file = upload(c, picture)
            assert pixels(c, generate(c, seed=1, init_image=file)["images"][0]).shape == (64, 64, 3)
            mask = Image.new("L", (64, 64), 0)
            mask.paste(255, (16, 16, 48, 48))
            out = pixels(c, generate(c, seed=1, init_image=file, mask=data_url(mask))["images"][0])
            outside = np.asarray(mask.filter(ImageFilter.GaussianBlur(4))) == 0
            src = np.asarray(picture, np.int16)
            assert np.abs(out - src)[outside].max() == 0 and np.abs(out - src)[~outside].mean() > 5
            r = c.post(
                "/train-lora",
                params=ALICE,
                files=[("images", ("a.png", encoded(picture), "image/png"))],
                data={"name": "nope"},
            )
            assert r.status_code == 422 and r.json()["error"]["code"] == "cannot_train_this_model"
    finally:
        eng.stop()
