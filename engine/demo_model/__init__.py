"""LoraMint's built-in demo model: a small text-to-image SD pipeline trained on drawn shapes."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MODEL_ID = "builtin:demo"
