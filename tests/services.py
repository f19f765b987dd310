"""Real outside services for the scale-out tests, started on free loopback ports and torn
down after: Azurite (Azure Blob Storage's emulator, npm package `azurite`) and redis-server
(Debian package). Each helper says why when its program isn't installed, so the tests that
need it skip with that reason instead of failing."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.engine_process import ROOT, free_port, stop_process

# Where test.sh installs the npm package under CI.
NPM_BIN = ROOT / ".cache" / "npm" / "node_modules" / ".bin"
# Azurite's published development account (not a secret: the emulator's fixed key).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def find(program: str, *extra: Path) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for folder in extra:
        if (folder / program).exists():
            return str(folder / program)
    return None


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"not listening on {port} after {timeout:.0f} s:\n{log.read_text()}")


class Service:
    """One started program; `stop()` (or leaving the `with`) ends it."""

    def __init__(self, argv: list[str], port: int, log: Path) -> None:
        self.port = port
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_port(port, self.proc, log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop_process(self.proc, grace=10)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def azurite_program() -> str | None:
    return find("azurite-blob", NPM_BIN)


def start_azurite(work: Path) -> tuple[Service, str]:
    """Azurite's blob service in `work`, and the connection string that reaches it."""
    program = azurite_program()
    assert program, "azurite-blob is not installed"
    port = free_port()
    argv = [program, "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    # The SDK may be newer than the emulator; the API version check would refuse it.
    argv += ["--location", str(work), "--silent", "--skipApiVersionCheck", "--loose"]
    service = Service(argv, port, work / "azurite.log")
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    return service, conn


class RedisServer:
    """redis-server on a free loopback port, its data in `work`: an append-only file written
    at every change, so `restart()` brings back every message and record it had."""

    def __init__(self, work: Path) -> None:
        program = find("redis-server")
        assert program, "redis-server is not installed"
        self.work = work
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.argv = [program, "--port", str(self.port), "--bind", "127.0.0.1"]
        self.argv += ["--dir", str(work), "--appendonly", "yes", "--appendfsync", "always"]
        self.argv += ["--save", ""]
        self.service = Service(self.argv, self.port, work / "redis.log")

    def restart(self) -> None:
        self.service.stop()
        self.service = Service(self.argv, self.port, self.work / "redis.log")

    def stop(self) -> None:
        self.service.stop()
