"""A person's whole flow in headless Chromium (Debian's, driven by Playwright), on an app in
Auth.Mode accounts: sign in, generate, train a LoRA from 2 images to 100 %, find it, use it with
a slider, manage images, sign out; a second user then finds an empty gallery.
Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import CHROMIUM, shot, watched_page
from tests.engine_process import TEAM, team_app
from tests.helpers import png_bytes

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
    pytest.mark.slow,
]


PASSWORDS = TEAM


@pytest.fixture(scope="module")
def app(tiny_models, tmp_path_factory):
    proc = team_app(str(tiny_models["sd"].folder), tmp_path_factory.mktemp("web"))
    proc.start_ready()
    yield proc
    proc.stop()


@pytest.fixture
def page(browser, app):
    with watched_page(browser, app.url) as pg:
        yield pg


def sign_in(page, name: str, then: str = "/generate") -> None:
    page.goto(then)
    assert "/login?next=" in page.url  # a page needs a signed-in browser
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.endswith(then) and "/login" not in url)


def test_generate_train_use_and_manage(page, tmp_path):
    page.goto("/")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_label("User name").fill("alice")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong user name or password").wait_for()
    shot(page, "0-sign-in")
    sign_in(page, "alice")
    page.get_by_label("Prompt", exact=True).fill("a red fox")
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Steps").fill("2")
    page.get_by_label("Seed").fill("1")
    page.get_by_role("button", name="Generate").click()
    page.locator("#batches figure img").first.wait_for(timeout=60_000)
    assert "seed 1" in page.locator("#batches figcaption").first.inner_text()
    shot(page, "1-generate")

    images = []
    for i, colour in enumerate([(220, 30, 30), (30, 30, 220)]):
        path = tmp_path / f"ref{i}.png"
        path.write_bytes(png_bytes(colour))
        images.append(str(path))
    page.goto("/train-lora")
    page.get_by_label("Reference images").set_input_files(images)
    assert page.locator("#thumbs img").count() == 2
    # The object preset's caption template, for this small model: the trigger word.
    expect(page.get_by_label("Caption of ref0.png")).to_have_value("ohwx")
    page.get_by_label("Name", exact=True).fill("browser_lora")
    page.get_by_label("Trigger word").fill("zqx")
    # The captions follow the trigger word until they are edited.
    assert page.get_by_label("Caption of ref0.png").input_value() == "zqx"
    page.get_by_label("Caption of ref1.png").fill("a blue zqx")
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Steps").fill("30")
    page.get_by_role("button", name="Start training").click()
    try:
        page.locator("#progress-text", has_text="Done:").wait_for(timeout=480_000)
    finally:
        shot(page, "2-trained")
    assert page.locator("#progress").evaluate("p => p.value") == 1

    page.get_by_role("link", name="Use this LoRA").click()
    page.wait_for_url("**/generate?*")
    page.locator('#lora-stack li[data-file="browser_lora.safetensors"]').wait_for()
    assert page.get_by_label("Prompt", exact=True).input_value().startswith("zqx")
    slider = page.get_by_label("Strength of browser_lora")
    slider.fill("0.6")
    assert page.locator("#lora-stack output").inner_text() == "0.60"
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Steps").fill("2")
    page.get_by_role("button", name="Generate").click()
    page.locator("#batches figure img").first.wait_for(timeout=60_000)
    shot(page, "3-generate-with-lora")

    page.goto("/my-loras")
    card = page.locator('li[data-file="browser_lora.safetensors"]')
    card.wait_for()
    assert "zqx" in card.inner_text()
    card.get_by_role("button", name="Details of browser_lora").click()
    assert "a blue zqx" in page.locator("#meta-groups").inner_text()
    shot(page, "4-my-loras")
    page.get_by_role("button", name="Close").click()

    page.goto("/my-images")
    page.locator("#image-grid figure").first.wait_for()
    before = page.locator("#image-grid figure").count()
    assert before >= 2
    page.locator("#image-grid button.thumb").first.click()
    assert "Seed" in page.locator("#dialog-params").inner_text()
    shot(page, "5-my-images")
    page.on("dialog", lambda d: d.accept())
    page.locator("#dialog-delete").click()
    expect(page.locator("#image-grid figure")).to_have_count(before - 1)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.goto("/my-images")
    assert "/login" in page.url  # signed out for real
    sign_in(page, "bob", "/my-images")
    page.locator("#images-empty").wait_for()
    assert page.locator("#image-grid figure").count() == 0
    page.goto("/my-loras")
    page.locator("#loras-empty").wait_for()
    shot(page, "8-second-user-empty")


def test_account_page_makes_a_token_shown_once(page):
    sign_in(page, "bob", "/account")
    page.get_by_label("What the token is for").fill("nightly")
    page.get_by_role("button", name="Create token").click()
    page.get_by_text("shown only now").wait_for()
    token = page.locator("#tok-new code").inner_text()
    page.get_by_role("button", name="Copy the token").click()  # copied, or says how to
    page.locator("#tok-new [role=status]").get_by_text("op").wait_for()
    assert token.startswith("lmt_")
    row = page.locator("#tok-table tbody tr", has_text="nightly")
    row.wait_for()
    shot(page, "9-account-token")
    page.on("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Revoke token nightly").click()
    page.locator("#tok-table tbody tr", has_text="revoked").wait_for()


def test_the_admin_adds_a_user_and_sees_what_each_one_keeps(page):
    sign_in(page, "bob", "/admin")
    assert page.get_by_text("only admins manage users").is_visible()  # a page, not JSON
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "alice", "/admin")
    page.locator('#user-table tr[data-user="alice"]').wait_for()
    page.get_by_label("User name").fill("dora")
    page.get_by_label("Password (8 characters or more)").fill("dora-password")
    page.get_by_role("button", name="Add user").click()
    row = page.locator('#user-table tr[data-user="dora"]')
    row.wait_for()
    assert "enabled" in row.inner_text()
    row.get_by_role("button", name="Disable dora").click()
    page.locator('#user-table tr[data-user="dora"]', has_text="disabled").wait_for()
    shot(page, "10-admin-users")


def test_the_api_docs_render_offline_under_the_csp(page):
    page.goto("/docs")
    page.locator(".opblock-summary-path", has_text="/train-lora").first.wait_for(timeout=30_000)
    page.locator(".opblock-summary-path", has_text="/generate").first.click()
    page.get_by_text("Try it out").wait_for()
    shot(page, "7-api-docs")


def test_pages_fit_a_phone_and_show_api_errors(browser, app):
    with watched_page(browser, app.url, 375, 740) as page:
        _phone_error(page)


def _phone_error(page) -> None:
    sign_in(page, "alice")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"page is {width}px wide on a 375px screen"
    page.get_by_label("Prompt", exact=True).fill("x")
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Width").fill("65")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("multiple of 8").wait_for()
    shot(page, "6-phone-error")


def test_accounts_on_a_lan_name_still_open_on_this_machine(browser, tmp_path):
    """Allowing only `gpubox.lan` once answered invalid_host to 127.0.0.1 and localhost, and
    the start line printed a URL no one could open."""
    lan = team_app(
        "unused",
        tmp_path,
        LORAMINT_ENGINE__AUTOSTART="false",
        LORAMINT_SERVER__ALLOWEDHOSTS='["gpubox.lan"]',
    )
    lan.start(lambda h: "engine" in h, timeout=60)
    try:
        port = lan.url.rsplit(":", 1)[1]
        line = next(ln for ln in lan.log_path.read_text().splitlines() if "starting at" in ln)
        assert f"http://gpubox.lan:{port}" in line and f"http://127.0.0.1:{port}" in line
        for base in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
            with watched_page(browser, base) as page:
                page.goto("/account")
                page.get_by_label("User name").fill("bob")
                page.get_by_label("Password").fill(PASSWORDS["bob"])
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(lambda url: url.endswith("/account"))
                page.get_by_role("heading", name="API tokens").wait_for()
        with lan.client() as c:  # the LAN name itself, and still nothing else
            assert c.get("/health", headers={"host": f"gpubox.lan:{port}"}).status_code == 200
            r = c.get("/health", headers={"host": "rebound.example"})
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_host"
    finally:
        lan.stop()
