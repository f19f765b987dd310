"""The device running out of memory, as the engine turns it into an answer (the real thing
needs a GPU: tests/test_cuda.py); and the demo trainer's loss weighting."""

from __future__ import annotations

import pytest
import torch

from engine.contract.errors import OutOfMemory
from engine.pipelines import memory_guard


def test_out_of_memory_becomes_a_clear_503():
    with pytest.raises(OutOfMemory) as err, memory_guard("4 image(s) of 2048x2048", "ask less"):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
    assert err.value.status_code == 503 and err.value.code == "out_of_memory"
    assert "4 image(s) of 2048x2048; ask less" in err.value.message
    with pytest.raises(ValueError), memory_guard("x", "y"):  # other errors pass through
        raise ValueError("not memory")
