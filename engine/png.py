"""PNG encoding fast enough to stay out of a request's way.

Pillow's PNG writer tries every row filter on every row and deflates with zlib: 110-150 ms
for a 1024 px picture on one core, near a tenth of an SDXL render on a fast card. Here every
row takes the Sub filter (one numpy subtraction) and ISA-L's deflate (`isal`, 5-10x zlib's
speed at a smaller size than zlib's level 1) compresses it: ~10 ms for the same picture
(`bench/overhead.py` prints both). Any PNG reader reads it; the text chunks are the ones
Pillow writes (tEXt, or iTXt when the text is not Latin-1), so A1111 and the gallery read
the parameters as before.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from isal import isal_zlib
from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# mode -> (colour type, channels)
MODES = {"L": (0, 1), "RGB": (2, 3), "RGBA": (6, 4)}


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _text(key: str, value: str) -> bytes:
    try:
        return _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:  # iTXt: uncompressed UTF-8, no language tag
        return _chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8"))


def _rows(pixels: np.ndarray) -> bytes:
    """Each row with the Sub filter: every byte less the same channel of the pixel before."""
    height = pixels.shape[0]
    filtered = np.empty((height, pixels.shape[1] * pixels.shape[2] + 1), np.uint8)
    filtered[:, 0] = 1  # the filter type, Sub
    body = filtered[:, 1:].reshape(pixels.shape)
    body[:, :1] = pixels[:, :1]
    np.subtract(pixels[:, 1:], pixels[:, :-1], out=body[:, 1:])  # uint8: wraps, as PNG wants
    return filtered.tobytes()


def encode(image: Image.Image, text: dict[str, str] | None = None) -> bytes:
    """`image` (L, RGB or RGBA; other modes as RGB) as PNG bytes, with `text` as text chunks."""
    if image.mode not in MODES:
        image = image.convert("RGB")
    colour, channels = MODES[image.mode]
    pixels = np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, channels)
    header = struct.pack(">IIBBBBB", image.width, image.height, 8, colour, 0, 0, 0)
    parts = [SIGNATURE, _chunk(b"IHDR", header)]
    parts += [_text(k, v) for k, v in (text or {}).items()]
    parts.append(_chunk(b"IDAT", isal_zlib.compress(_rows(pixels), 1)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)
