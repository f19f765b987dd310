"""Run a diffusers example script with the torchvision stand-in (README.md):
`python bench/stand_ins/run_script.py SCRIPT [ARGS...]`.

transformers and diffusers look for torchvision as their modules load; loading the ones the
script uses before the stand-in is on the path keeps their own image code off it."""

import runpy
import sys
from pathlib import Path

import diffusers.training_utils  # noqa: F401
import transformers.modeling_utils  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
