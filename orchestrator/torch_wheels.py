"""Which PyTorch build the engine's venv gets, chosen when its requirements are installed.

PyPI's torch is CPU-only on Windows, and on Linux it is built for one CUDA version, which an
older NVIDIA driver can't run. When `nvidia-smi` answers, torch is installed first from
PyTorch's own index, the newest CUDA build the driver runs; requirements.txt's `torch==X`
is then already met. Without an NVIDIA driver nothing changes (PyPI: CPU on Windows and
Linux machines without a GPU, MPS on Apple silicon). The choice, and why, is printed.

Stdlib only: the supervisor imports it, and setup-python.sh/.bat run it with any Python:

    python orchestrator/torch_wheels.py requirements.txt [--index auto|pypi|cpu|cu128|URL]
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

INDEX = "https://download.pytorch.org/whl/{}"
# The CUDA builds PyTorch publishes for the torch pinned in requirements.txt, newest first
# (update with the pin: docs/development.md, "Why these versions"). A driver runs builds for
# its own CUDA version and older ones.
CUDA_BUILDS = (((13, 0), "cu130"), ((12, 8), "cu128"), ((12, 6), "cu126"))
PYPI_LINUX_CUDA = (12, 8)  # what PyPI's Linux x86_64 torch wheel is built for


@dataclass(frozen=True)
class TorchChoice:
    build: str | None  # "cu128", "cpu"; None: PyPI's, as requirements.txt says
    why: str

    def pip_argv(self, python: str, pin: str) -> list[str] | None:
        """The pip command that installs this build of `pin` (torch==X), None for PyPI's."""
        if self.build is None:
            return None
        url = self.build if "://" in self.build else INDEX.format(self.build)
        spec = pin if "://" in self.build else f"{pin}+{self.build}"
        return [python, "-m", "pip", "install", "--disable-pip-version-check", spec,
                "--index-url", url]  # fmt: skip


def driver_cuda(run=subprocess.run) -> tuple[int, int] | None:
    """The CUDA version the NVIDIA driver supports (nvidia-smi's header); None: no driver."""
    try:
        out = run(["nvidia-smi"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", out.stdout or "")
    return (int(found[1]), int(found[2])) if out.returncode == 0 and found else None


def choose(system: str, cuda: tuple[int, int] | None, index: str = "auto") -> TorchChoice:
    """`system`: platform.system(); `cuda`: driver_cuda(); `index`: the user's override."""
    if index == "pypi":
        return TorchChoice(None, "torch from PyPI, as asked (LORAMINT_ENGINE__TORCHINDEX=pypi)")
    if index != "auto":
        return TorchChoice(index, f"torch's {index} build, as asked (LORAMINT_ENGINE__TORCHINDEX)")
    if cuda is None:
        return TorchChoice(None, "no NVIDIA driver answered (nvidia-smi): torch from PyPI")
    found = f"an NVIDIA driver for CUDA {cuda[0]}.{cuda[1]}"
    if system == "Linux" and cuda >= PYPI_LINUX_CUDA:
        return TorchChoice(None, f"{found}: PyPI's torch (CUDA {PYPI_LINUX_CUDA[0]}."
                                 f"{PYPI_LINUX_CUDA[1]}) runs on it")  # fmt: skip
    build = next((tag for version, tag in CUDA_BUILDS if version <= cuda), None)
    if build is None:
        oldest = ".".join(map(str, CUDA_BUILDS[-1][0]))
        why = f"{found}, older than CUDA {oldest} (torch's oldest build): update the driver"
        return TorchChoice("cpu", why + "; torch's CPU build for now")
    where = (
        "PyPI's torch is CPU-only on Windows"
        if system == "Windows"
        else f"PyPI's torch needs CUDA {PYPI_LINUX_CUDA[0]}.{PYPI_LINUX_CUDA[1]}"
    )
    return TorchChoice(build, f"{found} ({where}): torch's {build} build from download.pytorch.org")


def torch_pin(requirements: Path) -> str | None:
    """`torch==X` from a requirements file, following `-r` includes; None: no torch there."""
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            pin = torch_pin(requirements.parent / line[3:].strip())
            if pin:
                return pin
        if re.fullmatch(r"torch==[\w.]+", line):
            return line
    return None


def plan_install(python: str, requirements: Path, index: str = "auto"):
    """(the choice, its pip command or None) for a requirements file that pins torch; None
    for one that doesn't (the orchestrator's)."""
    pin = torch_pin(requirements)
    if pin is None:
        return None
    choice = choose(platform.system(), driver_cuda(), index)
    return choice, choice.pip_argv(python, pin)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("requirements", type=Path)
    ap.add_argument("--index", default="auto", help="auto, pypi, cpu, cu128, ... or a URL")
    args = ap.parse_args()
    planned = plan_install(sys.executable, args.requirements, args.index)
    if planned is None:
        return
    print(planned[0].why)
    if planned[1] is not None:
        sys.exit(subprocess.run(planned[1]).returncode)


if __name__ == "__main__":
    main()
