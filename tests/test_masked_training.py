"""Masked training (#30): a mask per training image (its transparency, or a mask file) says
what to learn; the loss is weighed by it at the latents' size. On tiny pipelines: the masks
travel and are recorded, bad ones get a 422 naming them, the loss ignores what is masked out;
on the demo model (slow): a corner shape the pictures share stays out of a masked LoRA."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from engine.masks import mask_sha256
from engine.training.data import loss_weights
from engine.training.trainer import masked_mse
from tests.helpers import ALICE, assert_error, encoded, start_training, wait_job

# Masks weigh the loss the same way whatever the UNet: one tiny family is enough.
SD_ONLY = pytest.mark.parametrize("engine", ["sd"], indirect=True)


def picture(colour=(200, 30, 30), size=(64, 64)) -> Image.Image:
    return Image.new("RGB", size, colour)


def left_half(size=(64, 64)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, (0, 0, size[0] // 2, size[1]))
    return mask


def with_alpha(image: Image.Image, alpha: Image.Image) -> bytes:
    rgba = image.convert("RGBA")
    rgba.putalpha(alpha)
    return encoded(rgba)


@SD_ONLY
def test_masks_are_recorded_kept_and_trained_on(client, engine):
    plain = encoded(picture((30, 30, 200)))
    cut = with_alpha(picture(), left_half())  # its transparency is its mask
    job = start_training(client, [plain, cut], name="masked", steps="4", sample_every="0")
    done = wait_job(client, job["job_id"])
    assert done["status"] == "succeeded", done
    assert done["params"]["mask_sha256"] == [None, mask_sha256(left_half())]
    kept = engine.data_dir / "jobs" / "alice"
    rgba = [Image.open(p) for p in kept.glob("img-*.png") if Image.open(p).mode == "RGBA"]
    assert len(rgba) == 1 and np.array_equal(np.asarray(rgba[0])[..., 3], np.asarray(left_half()))
    lora = engine.data_dir / "loras" / "alice" / "masked.safetensors"
    with safe_open(str(lora), framework="pt") as f:
        assert f"{mask_sha256(left_half())}" in f.metadata()["loramint.mask_sha256"]
    # A mask file stands in for the transparency; each image has its own.
    files = [encoded(left_half()), encoded(Image.new("L", (64, 64), 255))]
    job = start_training(
        client, [plain, cut], masks=files, name="masked2", steps="2", sample_every="0"
    )
    done = wait_job(client, job["job_id"])
    assert done["status"] == "succeeded", done
    # An all-white mask (the page's, for an image learnt whole) is no mask.
    assert done["params"]["mask_sha256"] == [mask_sha256(left_half()), None]


@SD_ONLY
def test_a_mask_of_the_same_shape_is_resized_and_a_painted_layer_reads_as_drawn(client):
    big = picture(size=(128, 96))
    layer = Image.new("LA", (64, 48), (255, 0))  # transparent: not learnt, whatever its colour
    layer.paste((255, 255), (0, 0, 32, 48))
    job = start_training(client, [encoded(big)], masks=[encoded(layer)], name="m3", steps="1")
    done = wait_job(client, job["job_id"])
    expected = Image.new("L", (64, 48), 0)
    expected.paste(255, (0, 0, 32, 48))
    assert done["params"]["mask_sha256"] == [
        mask_sha256(expected.resize((128, 96), Image.Resampling.BILINEAR))
    ]


OK = encoded(picture())


@SD_ONLY
@pytest.mark.parametrize(
    ("images", "masks", "code", "says"),
    [
        ([OK, OK], [encoded(left_half())], "mask_count", "2 images, 1 masks"),
        ([OK], [encoded(left_half((64, 32)))], "mask_size", "mask 1 is 64x32"),
        ([OK], [encoded(Image.new("L", (64, 64), 0))], "empty_mask", "mask 1 is all black"),
        ([OK], [b"not a picture"], "invalid_mask", "mask 1 is not a readable"),
        ([OK], [b"\x89PNG" + b"\0" * (6 << 20)], "mask_too_large", "larger than 5 MB"),
        ([OK], [encoded(Image.new("L", (8192, 8192)))], "mask_size", "at most 4096"),
        ([with_alpha(picture(), Image.new("L", (64, 64), 0))], [], "empty_mask", "transparency"),
    ],
)
def test_bad_masks_get_a_422_naming_them(client, images, masks, code, says):
    files = [("images", (f"i{k}.png", d, "image/png")) for k, d in enumerate(images)]
    files += [("masks", (f"m{k}.png", d, "image/png")) for k, d in enumerate(masks)]
    r = client.post("/train-lora", params=ALICE, files=files, data={"name": "bad"})
    assert_error(r, 422, code)
    assert says in r.json()["error"]["message"]


def test_the_loss_counts_only_what_the_mask_keeps():
    pred, target = torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 8, 8)
    target[..., 4:] = 3.0  # wrong only on the right half
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1.0
    assert float(masked_mse(pred, target, mask)) == 0.0
    assert float(masked_mse(pred, target, 1 - mask)) == pytest.approx(9.0)  # the MSE's scale
    assert float(masked_mse(pred, target, None)) == pytest.approx(4.5)
    # At the latents' size the edge is soft, and a picture without a mask is learnt whole.
    narrow = Image.new("L", (64, 64), 0)
    narrow.paste(255, (0, 0, 28, 64))  # its edge halfway across the 4th latent column
    w = loss_weights([narrow, None], [picture(), picture()], 64, 8)
    assert w.shape == (2, 1, 8, 8)
    # The 4th column holds some of it: counted fully; the 5th is its soft edge.
    assert w[0, 0, 0].tolist() == pytest.approx([1, 1, 1, 1, 0.5, 0, 0, 0])
    assert torch.equal(w[1], torch.ones(1, 8, 8))


@SD_ONLY
def test_without_its_masking_model_subject_masks_says_what_to_do(client):
    r = client.post("/subject-masks", params=ALICE, files=[("images", ("a.png", OK))])
    err = assert_error(r, 503, "masker_unavailable")
    assert "LORAMINT_MASK_MODEL" in err["message"] and "Paint" in err["message"]


def test_the_demo_subject_mask_covers_the_star_and_not_the_corner_shape(demo):
    from engine.demo_model.masked import HELD_APART

    corner_set = HELD_APART[0]
    files = [("images", (f"{i}.png", encoded(im))) for i, im in enumerate(corner_set.images())]
    with demo.client() as c:
        r = c.post("/subject-masks", params=ALICE, files=files)
    assert r.status_code == 200, r.text
    assert r.json()["masker"] == "builtin:demo reader"
    for url, star, (scene, corner) in zip(
        r.json()["masks"], corner_set.star_masks(grow=0), corner_set.scenes(), strict=True
    ):
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",")[1])))) > 127
        assert mask[np.asarray(star) > 127].all()  # every pixel of the star
        box = mask[int(corner.cy) - 8 : int(corner.cy) + 8, int(corner.cx) - 8 : int(corner.cx) + 8]
        assert not box.any() and mask.mean() < 0.3, scene  # nothing of the corner shape


@pytest.mark.slow
def test_a_masked_lora_draws_the_star_without_the_corner_shape(demo):
    """#30's acceptance on a held-apart set (engine/demo_model/masked.py): trained with masks
    over the stars, the trigger prompts draw the star and not the corner shape all the
    pictures share. Measured on both held-apart sets: engine/demo_model/README.md."""
    from engine.demo_model.masked import CASES, HELD_APART, score

    corner_set = HELD_APART[0]
    with demo.client() as c:
        job = start_training(
            c,
            [encoded(im) for im in corner_set.images()],
            masks=[encoded(m) for m in corner_set.star_masks()],
            name="masked-stars",
            trigger_word="zxq",
            captions=list(corner_set.captions()),
            sample_every="0",  # the LoRA is judged here, not its samples: time for the steps
            checkpoint_every="0",
        )
        done = wait_job(c, job["job_id"], timeout=900)
        assert done["status"] == "succeeded", done
        pictures = []
        lora = [{"file": "masked-stars.safetensors", "strength": 1.0}]
        for prompt, seed in CASES:
            r = c.post(
                "/generate", params=ALICE, json={"prompt": prompt, "seed": seed, "loras": lora}
            )
            assert r.status_code == 200, r.text
            png = c.get(r.json()["images"][0]["url"]).content
            pictures.append(Image.open(io.BytesIO(png)).convert("RGB"))
    scores = score(pictures, corner_set.corner)
    # Measured: no corner shape, the star alone in 20 of 20 (the other held-apart sets 85-95 %).
    assert scores["corner"] <= 0.1 and scores["star_alone"] >= 0.85, scores
