"""Resize, crops, flip, ToTensor and Normalize on PIL images, as torchvision defines them."""

from __future__ import annotations

import enum
import random

import numpy as np
import torch
from PIL import Image

from torchvision.transforms.functional import crop


class InterpolationMode(enum.Enum):
    NEAREST = Image.Resampling.NEAREST
    BILINEAR = Image.Resampling.BILINEAR
    BICUBIC = Image.Resampling.BICUBIC
    BOX = Image.Resampling.BOX
    HAMMING = Image.Resampling.HAMMING
    LANCZOS = Image.Resampling.LANCZOS


class Compose:
    def __init__(self, steps):
        self.steps = steps

    def __call__(self, x):
        for step in self.steps:
            x = step(x)
        return x


class Resize:
    """The shorter side to `size`, keeping the aspect ratio."""

    def __init__(self, size: int, interpolation=InterpolationMode.BILINEAR):
        self.size, self.mode = size, interpolation.value

    def __call__(self, img):
        w, h = img.size
        s = self.size / min(w, h)
        return img.resize((max(1, round(w * s)), max(1, round(h * s))), self.mode)


class CenterCrop:
    def __init__(self, size: int):
        self.size = size

    def __call__(self, img):
        w, h = img.size
        return crop(img, (h - self.size) // 2, (w - self.size) // 2, self.size, self.size)


class RandomCrop(CenterCrop):
    @staticmethod
    def get_params(img, output_size):
        w, h = img.size
        th, tw = output_size
        return random.randint(0, h - th), random.randint(0, w - tw), th, tw

    def __call__(self, img):
        return crop(img, *self.get_params(img, (self.size, self.size)))


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img):
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if random.random() < self.p else img


class ToTensor:
    def __call__(self, img):
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, x):
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        return (x - mean) / torch.tensor(self.std).view(-1, 1, 1)
