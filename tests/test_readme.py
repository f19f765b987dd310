"""The README's API block (bash and Python) and docs/api.md's examples, run as written, in
order, against a fresh app on the built-in demo model: the public API they show can't drift
from the one that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.demo_model.acceptance import star_images
from tests.engine_process import ROOT, OrchestratorProcess
from tests.helpers import wait_job

pytestmark = [
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
    pytest.mark.slow,
]
URL = "http://127.0.0.1:5001"


def blocks(doc: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (ROOT / doc).read_text(), re.S)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    proc = OrchestratorProcess("builtin:demo", tmp_path_factory.mktemp("app")).start_ready()
    yield proc
    proc.stop()


@pytest.fixture
def work(tmp_path):
    for i, image in enumerate(star_images()[:3], 1):
        image.save(tmp_path / f"star{i}.png")
    return tmp_path


def run(script: str, app: OrchestratorProcess, work: Path, shell: list[str]) -> str:
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    done = subprocess.run(
        [*shell, script.replace(URL, app.url)],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def bash(script: str) -> str:
    # Each command must succeed, and curl must fail on an HTTP error status.
    return 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n' + script


def test_the_readme_api_block_and_python_example_run(app, work):
    api = [b for b in blocks("README.md", "bash") if f"O={URL}" in b]
    assert len(api) == 1
    out = run(bash(api[0]), app, work, ["bash", "-c"])
    assert '"state":"ready"' in out.replace(" ", "") and "event: succeeded" in out
    assert (work / "circle.png").read_bytes().startswith(b"\x89PNG")
    assert "\ninpaint\n" in out  # the img2img call printed its image's url before it
    assert not (app.data_dir / "loras" / "local" / "my_star.safetensors").exists()  # deleted
    (python,) = blocks("README.md", "python")
    out = run(python, app, work, [sys.executable, "-c"])
    assert out.split()[1] == "builtin:demo"
    assert (work / "square.png").read_bytes().startswith(b"\x89PNG")


def test_the_api_doc_examples_run_in_order(app, work):
    examples = blocks("docs/api.md", "bash")
    assert len(examples) == 2 and f"O={URL}" in examples[0]
    out = run(bash("\n".join(examples)), app, work, ["bash", "-c"])
    assert '"state":"ready"' in out.replace(" ", "")
    assert "event: succeeded" in out
    assert (work / "circle.png").read_bytes().startswith(b"\x89PNG")
    assert "zxq on a" in out  # the captions
    assert "five-pointed stars" in out  # the edited metadata, listed
    assert (work / "red_star_kohya.safetensors").stat().st_size > 1000
    loras = app.data_dir / "loras" / "local"
    with app.client() as c:  # the continue the block started, to its end
        for job in c.get("/jobs").json()["jobs"]:
            wait_job(c, job["id"], params={})
    # The checkpoint saved as a LoRA of its own; the continued LoRA replaces red_star in place.
    assert sorted(p.name for p in loras.iterdir()) == [
        "red_star.safetensors",
        "red_star_40.safetensors",
    ]
    assert '"how": "continue"' in out or "'how': 'continue'" in out
