"""Process-level helpers for the supervisor: where a venv's Python is, whether a port is free,
and starting and stopping a child with its whole process tree on POSIX and Windows."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger("loramint.supervisor")
WINDOWS = sys.platform == "win32"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if WINDOWS else "bin/python")


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        if not WINDOWS:  # TIME_WAIT from our own last engine must not count as "in use"
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def own_group() -> dict[str, Any]:
    """Popen arguments that give the child its own process group, so the whole tree can be
    signalled at once (and Ctrl-C in our console doesn't reach it before we decide)."""
    if WINDOWS:
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def ask_to_stop(proc: subprocess.Popen) -> None:
    """The graceful stop signal to the child's process group (Windows: CTRL_BREAK_EVENT)."""
    if WINDOWS:
        proc.send_signal(signal.CTRL_BREAK_EVENT)
    else:
        os.killpg(proc.pid, signal.SIGTERM)


def stop_tree(proc: subprocess.Popen, timeout: float) -> None:
    """Graceful stop, then kill the whole tree; no orphan survives."""
    if proc.poll() is not None:
        return
    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        tree = []
    try:
        ask_to_stop(proc)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("engine ignored the stop request; killing its process tree")
        if WINDOWS:
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)], check=False)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:  # it exited between poll() and the signal
        log.info("engine already gone")
    for child in tree:  # children that left the group still die with it
        with contextlib.suppress(psutil.Error):
            child.kill()
