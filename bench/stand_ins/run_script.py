"""Run a diffusers example script with the torchvision stand-in (README.md):
`python bench/stand_ins/run_script.py STAMPS SCRIPT [ARGS...]`.

transformers and diffusers look for torchvision as their modules load; loading the ones the
script uses before the stand-in is on the path keeps their own image code off it. The time of
every optimizer step is written to STAMPS, one per line, so the bench reads the script's step
time from inside, as it reads LoraMint's, rather than from the run's total; on CUDA the peak of
allocated memory goes to STAMPS.peak."""

import runpy
import sys
import time
from pathlib import Path

import diffusers.training_utils  # noqa: F401
import torch
import transformers.modeling_utils  # noqa: F401
from torch.optim.optimizer import register_optimizer_step_post_hook

stamps_file, *script_argv = sys.argv[1:]
stamps: list[float] = []
register_optimizer_step_post_hook(lambda *_: stamps.append(time.perf_counter()))
sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
sys.argv = script_argv
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    Path(stamps_file).write_text("\n".join(f"{s:.6f}" for s in stamps))
    if torch.cuda.is_available():
        Path(stamps_file + ".peak").write_text(str(torch.cuda.max_memory_allocated()))
