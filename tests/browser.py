"""Driving Debian's Chromium with Playwright: where it is, where screenshots go, and a page
that fails its test on any script error or Content-Security-Policy violation."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.engine_process import ROOT, OrchestratorProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ROOT / "test-artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@contextmanager
def watched_page(
    browser, url: str, width: int = 1100, height: int = 900, *, confirm: bool = False
) -> Iterator:
    """A page of the app at `url`. Uncaught script errors and console errors fail the test,
    except the browser's own note of an HTTP error answer (tests cause those on purpose).
    `confirm`: the person says OK to every confirm() (Playwright's default is Cancel)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=url, viewport={"width": width, "height": height})
    page = context.new_page()
    if confirm:
        page.on("dialog", lambda d: d.accept())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not m.text.startswith("Failed to load resource")
            and errors.append(m.text)
        ),
    )
    yield page
    context.close()
    assert not errors, errors


def app_fixture(model: str, name: str):
    """A module's app: one orchestrator (and its engine) on `model`, shared by its tests."""

    @pytest.fixture(scope="module")
    def app(tmp_path_factory):
        proc = OrchestratorProcess(model, tmp_path_factory.mktemp(name))
        proc.start_ready(timeout=240)
        yield proc
        proc.stop()

    return app
