"""Installing on a GPU box: which torch build the engine's venv gets (orchestrator/
torch_wheels.py), and the engine saying when a GPU is there but torch can't use it. The
NVIDIA driver is the edge we can't run here: `nvidia-smi` is a stand-in script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.gpu import gpu_note
from orchestrator.banner import banner
from orchestrator.config import OrchestratorSettings
from orchestrator.supervisor import EngineSupervisor, SupervisorError
from orchestrator.torch_wheels import choose, driver_cuda, torch_pin

ROOT = Path(__file__).resolve().parent.parent
SMI_HEADER = "| NVIDIA-SMI 570.86   Driver Version: 570.86   CUDA Version: {cuda}     |\n"


@pytest.mark.parametrize(
    ("system", "cuda", "build", "words"),
    [
        ("Windows", (12, 8), "cu128", "CPU-only on Windows"),
        ("Windows", (13, 1), "cu130", "CPU-only on Windows"),
        ("Linux", (12, 9), None, "PyPI's torch (CUDA 12.8) runs on it"),
        ("Linux", (12, 6), "cu126", "PyPI's torch needs CUDA 12.8"),
        ("Linux", (12, 2), "cpu", "update the driver"),
        ("Linux", None, None, "no NVIDIA driver answered"),
        ("Darwin", None, None, "torch from PyPI"),
    ],
)
def test_the_build_for_the_driver(system, cuda, build, words) -> None:
    choice = choose(system, cuda)
    assert choice.build == build and words in choice.why


def test_overrides_and_the_pip_command() -> None:
    assert choose("Windows", (12, 8), "pypi").build is None
    cpu = choose("Linux", (12, 8), "cpu")
    argv = cpu.pip_argv("py", "torch==2.13.0")
    assert argv[:5] == ["py", "-m", "pip", "install", "--disable-pip-version-check"]
    assert argv[5:] == ["torch==2.13.0+cpu", "--index-url", "https://download.pytorch.org/whl/cpu"]
    url = choose("Linux", None, "file:///wheels").pip_argv("py", "torch==2.13.0")
    assert url[-3:] == ["torch==2.13.0", "--index-url", "file:///wheels"]
    assert choose("Linux", None).pip_argv("py", "torch==2.13.0") is None


def test_the_torch_pin_is_read_through_includes(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("fastapi==1\ntorch==2.13.0  # the pin\n")
    (tmp_path / "scale.txt").write_text("-r base.txt\ncelery==5\n")
    (tmp_path / "none.txt").write_text("jinja2==3\n")
    assert torch_pin(tmp_path / "scale.txt") == "torch==2.13.0"
    assert torch_pin(tmp_path / "none.txt") is None
    assert torch_pin(ROOT / "requirements.txt").startswith("torch==")


def test_driver_version_from_nvidia_smi() -> None:
    def run(argv, **kw):
        assert argv == ["nvidia-smi"]
        return SimpleNamespace(returncode=0, stdout=SMI_HEADER.format(cuda="12.8"))

    assert driver_cuda(run) == (12, 8)
    assert driver_cuda(lambda *a, **k: SimpleNamespace(returncode=9, stdout="")) is None

    def missing(*a, **k):
        raise FileNotFoundError("nvidia-smi")

    assert driver_cuda(missing) is None


@pytest.fixture
def fake_smi(tmp_path: Path) -> dict[str, str]:
    """PATH with an `nvidia-smi` that answers like a driver for CUDA 12.9 with one card."""
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-L" ]; then echo "GPU 0: NVIDIA RTX 4090 (UUID: GPU-1234)"; exit 0; fi\n'
        f"printf '{SMI_HEADER.format(cuda='12.9')}'\n"
    )
    smi.chmod(0o755)
    return {**os.environ, "PATH": f"{smi.parent}{os.pathsep}{os.environ['PATH']}"}


def test_the_setup_command_says_what_it_chose(fake_smi, tmp_path: Path) -> None:
    script = str(ROOT / "orchestrator/torch_wheels.py")
    out = subprocess.run([sys.executable, script, str(ROOT / "requirements.txt")],
                         capture_output=True, text=True, env=fake_smi, check=True)  # fmt: skip
    assert "CUDA 12.9" in out.stdout and "runs on it" in out.stdout  # Linux: PyPI's build
    none = tmp_path / "r.txt"
    none.write_text("jinja2==3\n")  # the orchestrator's requirements: nothing to choose
    quiet = subprocess.run([sys.executable, script, str(none)], capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stdout == ""


def test_the_supervisor_installs_the_chosen_build_first(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("torch==0.0.1\n")
    empty = tmp_path / "index"
    empty.mkdir()  # an index with nothing in it: pip fails at once, no network needed
    settings = OrchestratorSettings(
        Engine={
            "VenvDir": str(tmp_path / "venv"),
            "Requirements": str(req),
            "Python": sys.executable,
            "TorchIndex": empty.as_uri(),
        }  # fmt: skip
    )
    calls: list[list[str]] = []

    def popen(argv, **kw):
        calls.append(list(argv))
        return subprocess.Popen(argv, **kw)

    with pytest.raises(SupervisorError, match="pip torch failed"):
        EngineSupervisor(settings, popen=popen).prepare()
    assert calls[-1][-3:] == ["torch==0.0.1", "--index-url", empty.as_uri()]


def test_a_gpu_torch_cant_use_is_named_with_the_fix(fake_smi) -> None:
    def run(argv, **kw):
        return subprocess.run(argv, env=fake_smi, **kw)

    note = gpu_note(run)
    assert note is not None and note.startswith("NVIDIA RTX 4090 found, but")
    assert "CPU-only build" in note and "LORAMINT_ENGINE__TORCHINDEX" in note  # this torch
    assert gpu_note() is None  # this machine: no driver
    health = {"status": "ready", "model": "x", "gpu_note": note}
    shown = banner({"state": "ready", "reason": None, "health": health})
    assert shown["level"] == "warning" and "runs on the CPU" in shown["text"]
    assert shown["details"] == note
