"""Driving Debian's Chromium with Playwright: where it is, where screenshots go, and a page
that fails its test on any script error or Content-Security-Policy violation."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from tests.engine_process import ROOT

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
def watched_page(browser, url: str, width: int = 1100, height: int = 900) -> Iterator:
    """A page of the app at `url`. Uncaught script errors and console errors fail the test,
    except the browser's own note of an HTTP error answer (tests cause those on purpose)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=url, viewport={"width": width, "height": height})
    page = context.new_page()
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
