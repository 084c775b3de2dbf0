"""The web page in a real headless Chromium (Playwright): submit a prompt, watch the job complete, see the
video play, then remix it from its card."""

import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

from tenku.serve.launch import ServerProcess  # noqa: E402

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()), None)
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
KEY = "web-test-key-123456"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium; CI installs it)"),
]


def serve_model(tmp_path_factory) -> str:
    from tenku.testing import make_tiny_pipeline

    return str(make_tiny_pipeline(tmp_path_factory.mktemp("model") / "tiny"))


def wait_js(page, expression: str, timeout: float = 15000):
    """Poll a JavaScript expression until it is truthy. (Playwright's wait_for_function evaluates its predicate
    with eval inside the page, which the server's Content-Security-Policy forbids, as it should.)"""
    import time

    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("serve")
    with ServerProcess(model=serve_model(tmp_path_factory), data_dir=data, workers=1,
                       args=["--api-key", KEY, "--poll-after-ms", "100", "--threads", "1", "--sizes", "32x32",
                             "--seconds", "1,2,4"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page()
        logs = []
        pg.on("console", lambda m: logs.append(f"{m.type}: {m.text}"))
        pg.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
        pg.logs = logs
        yield pg
        browser.close()


def test_page_needs_the_key_then_generates_and_plays(server, page):
    page.goto(server.url + "/")
    page.wait_for_selector("#key-row:not([hidden])", timeout=15000)  # keys configured: the page asks for one
    page.fill("#api-key", KEY)
    page.dispatch_event("#api-key", "change")
    wait_js(page, "document.querySelectorAll('#size option').length > 0", timeout=15000)
    page.fill("#prompt", "a red circle rolls to the right")
    page.click("#submit")
    card = page.locator(".card").first
    card.wait_for(timeout=15000)
    page.wait_for_selector(".card[data-status='completed'] video", timeout=60000)
    ok = wait_js(
        page,
        """() => { const v = document.querySelector('.card video');
                   return v && (v.readyState >= 2 || v.currentTime > 0) ? [v.readyState, v.currentTime] : null; }""",
        timeout=30000,
    )
    assert ok[0] >= 2 or ok[1] > 0, page.logs
    assert page.locator(".card .download").first.get_attribute("download").endswith(".mp4")
    assert not [m for m in page.logs if m.startswith("pageerror")], page.logs


def test_remix_button_and_server_errors_are_shown(server, page):
    page.fill("#prompt", "a blue circle rolls to the right")
    page.locator(".card[data-status='completed'] .remix").first.click()
    wait_js(page, "document.querySelectorAll('.card').length >= 2", timeout=15000)
    wait_js(page, "document.querySelectorAll(\".card[data-status='completed']\").length >= 2", timeout=60000)
    assert "remix of" in page.locator(".card").first.inner_text()
    page.fill("#prompt", "x" * 5000)  # over the server's prompt limit: the API's message is shown
    page.click("#submit")
    wait_js(page, "document.getElementById('form-error').textContent.length > 0", timeout=15000)
    assert "limit" in page.inner_text("#form-error")


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """A server with no API key configured."""
    data = tmp_path_factory.mktemp("serve-open")
    with ServerProcess(model=serve_model(tmp_path_factory), data_dir=data, workers=1,
                       args=["--poll-after-ms", "100", "--threads", "1", "--sizes", "32x32",
                             "--seconds", "1,2,4"]) as srv:
        yield srv


def test_hidden_elements_stay_hidden_and_the_page_has_an_icon(open_server, page):
    """The `hidden` attribute wins over the page's display rules (a flex row once showed through it)."""
    page.goto(open_server.url + "/")
    wait_js(page, "document.querySelectorAll('#size option').length > 0", timeout=15000)
    assert page.locator("#key-row").get_attribute("hidden") is not None
    assert not page.locator("#key-row").is_visible()  # no key configured: no key field
    page.select_option("#mode", "text")
    assert not page.locator("#image-label").is_visible()  # text-to-video: no image picker
    page.select_option("#mode", "image")
    assert page.locator("#image-label").is_visible()
    page.select_option("#mode", "text")
    assert not page.locator("#image-label").is_visible()
    icon = page.request.get(open_server.url + "/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in icon.body()
