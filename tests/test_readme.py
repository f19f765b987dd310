"""The README's curl examples, run as written, in order, against a fresh app on the built-in
demo model: the public API they show can't drift from the one that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.demo_model.acceptance import star_images
from tests.engine_process import ROOT, OrchestratorProcess

pytestmark = [
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
    pytest.mark.slow,
]


def readme_examples() -> str:
    """Every bash block from "## REST API" up to "### Training defaults" (the run order)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## REST API") : text.index("### Training defaults")]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 2 and "O=http://127.0.0.1:5001" in blocks[0]
    return "\n".join(blocks)


def test_the_readme_examples_run_in_order(tmp_path):
    (tmp_path / "app").mkdir()
    app = OrchestratorProcess("builtin:demo", tmp_path / "app").start_ready()
    try:
        work = tmp_path / "work"
        work.mkdir()
        for i, image in enumerate(star_images()[:3], 1):
            image.save(work / f"star{i}.png")
        script = readme_examples().replace("O=http://127.0.0.1:5001", f"O={app.url}")
        # Each command must succeed, and curl must fail on an HTTP error status.
        script = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n' + script
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
        run = subprocess.run(
            ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=900
        )
        assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        out = run.stdout
        assert '"status":"ready"' in out.replace(" ", "")
        assert "event: succeeded" in out
        assert (work / "circle.png").read_bytes().startswith(b"\x89PNG")
        assert "zxq on a" in out  # the captions
        assert "five-pointed stars" in out  # the edited metadata, listed
        assert (work / "red_star_kohya.safetensors").stat().st_size > 1000
        loras = app.data_dir / "loras" / "local"
        assert sorted(p.name for p in loras.iterdir()) == ["red_star.safetensors"]
    finally:
        app.stop()
