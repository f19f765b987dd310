"""The full-size architectures the GPU bench builds (bench/full_size): their configs make the
published models, parameter for parameter, and the same code builds and runs them tiny."""

from __future__ import annotations

import numpy as np
import pytest

from bench.full_size import ARCHS, PARAMETERS, build, components


@pytest.mark.parametrize("arch", ARCHS)
def test_the_configs_are_the_published_architectures(arch):
    parts = components(arch, device="meta")  # shapes only: no memory, no time
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in parts.items()}
    assert counts == PARAMETERS[arch]


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_builds_run(arch):
    pipe = build(arch, size="tiny")
    image = pipe("a red fox", num_inference_steps=2, output_type="np").images[0]
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()
