"""The engine's PNG writer: any reader gets back the exact pixels and the text chunks."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from engine import png


def _picture(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    h, w = size[1], size[0]
    smooth = np.linspace(0, 255, w * h * channels).reshape(h, w, channels)
    noisy = (smooth + rng.normal(0, 20, smooth.shape)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(noisy.squeeze(-1) if channels == 1 else noisy, mode)


@pytest.mark.parametrize(
    ("mode", "size"),
    [("RGB", (64, 48)), ("RGBA", (17, 5)), ("L", (33, 1)), ("RGB", (1, 1)), ("RGB", (300, 7))],
)
def test_pixels_come_back_exactly(mode: str, size: tuple[int, int]) -> None:
    picture = _picture(mode, size)
    data = png.encode(picture)
    with Image.open(io.BytesIO(data), formats=["PNG"]) as back:
        back.load()
        assert (back.mode, back.size) == (mode, size)
        assert np.array_equal(np.asarray(back), np.asarray(picture))


def test_other_modes_are_written_as_rgb() -> None:
    picture = _picture("RGB", (8, 8)).convert("P")
    with Image.open(io.BytesIO(png.encode(picture))) as back:
        assert back.mode == "RGB"
        assert np.array_equal(np.asarray(back), np.asarray(picture.convert("RGB")))


def test_text_chunks_latin1_and_unicode() -> None:
    text = {"parameters": "a café, Steps: 4", "loramint": '{"prompt": "a 🦊 fox, 東京"}'}
    data = png.encode(_picture("RGB", (8, 8)), text)
    with Image.open(io.BytesIO(data)) as back:
        assert back.text == text
    assert b"tEXtparameters" in data and b"iTXtloramint" in data  # as Pillow writes them


def test_every_chunk_crc_is_right_and_pillow_verifies_it() -> None:
    data = png.encode(_picture("RGB", (40, 30)), {"k": "v"})
    with Image.open(io.BytesIO(data)) as back:
        back.verify()
    pos, kinds = 8, []
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        crc = int.from_bytes(data[pos + 8 + length : pos + 12 + length], "big")
        assert zlib.crc32(kind + body) == crc, kind
        kinds.append(kind)
        pos += 12 + length
    assert kinds == [b"IHDR", b"tEXt", b"IDAT", b"IEND"]


def test_smaller_than_pillows_fastest_on_a_photo_like_picture() -> None:
    picture = _picture("RGB", (256, 256))
    buf = io.BytesIO()
    picture.save(buf, format="PNG", compress_level=1)
    assert len(png.encode(picture)) < len(buf.getvalue()) * 1.1
