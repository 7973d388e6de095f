"""The gallery's web pages (``examples/<name>/index.html``) in real headless Chromium.

Each app runs as a user would start it for a browser (``app.py --serve``, on a free port
through ``$PORT``); Playwright opens the page, clicks what a user clicks and reads what
the page shows. Chromium is found as ``$EVENTPATTERNS_CHROMIUM``, ``chromium`` or
``chromium-browser``; without it (or playwright) the tests skip, except under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT_MS = 15_000  # the --serve mode paces the work for people to watch (a step a second)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = (
        os.environ.get("EVENTPATTERNS_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI requires Chromium and playwright for the browser tests")
        pytest.skip("Chromium or the playwright package is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=FLAGS)
        yield browser
        browser.close()


@contextmanager
def serve(name: str) -> Iterator[str]:
    """Run ``examples/<name>/app.py --serve`` on a free port; yield its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-u", str(ROOT / "examples" / name / "app.py"), "--serve"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PORT": "0", "EVENTPATTERNS_BACKEND": "memory://"},
    )
    try:
        assert proc.stdout is not None
        announced = proc.stdout.readline()  # "open http://127.0.0.1:<port>/?token=..."
        found = re.search(r"http://127\.0\.0\.1:\d+", announced)
        assert found, f"the app did not announce its URL: {announced!r}"
        yield found[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def open_page(browser: Browser, url: str) -> Page:
    """Open ``url`` in a fresh profile; return once the page's subscription is live."""
    page = browser.new_context().new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.wait_for_function("document.getElementById('status').textContent === 'live'")
    return page


def test_order_status_page(browser: Browser) -> None:
    with serve("order_status") as base:
        page = open_page(browser, f"{base}/?token=alice")
        page.click("#order")
        page.wait_for_selector("#orders li")
        page.wait_for_function(
            "document.querySelector('#orders li').textContent.endsWith('delivered')"
        )
        assert re.fullmatch(r"o-\w+: delivered", page.inner_text("#orders li"))


def test_report_job_page(browser: Browser) -> None:
    with serve("report_job") as base:
        page = open_page(browser, f"{base}/?token=alice")
        page.click("#build")
        page.wait_for_selector("#download:not([hidden])")
        assert page.eval_on_selector("#bar", "bar => bar.value") == 1
        assert page.inner_text("#state") == "succeeded 1000 rows"
        with page.expect_download() as download:
            page.click("#download")
        assert download.value.suggested_filename == "report-05.csv"  # the FileResult's
        rows = Path(download.value.path()).read_text().splitlines()
        assert rows[0] == "day,orders,revenue"
        assert len(rows) == 1001


def test_chat_page(browser: Browser) -> None:
    with serve("chat") as base:
        ann = open_page(browser, f"{base}/?token=ann")
        bob = open_page(browser, f"{base}/?token=bob")
        for page in (ann, bob):
            page.wait_for_function("document.getElementById('here').textContent === 'ann, bob'")
        ann.fill("#text", "hello from Chromium")
        ann.click("#say button")
        bob.wait_for_function("document.getElementById('log').textContent.includes('Chromium')")
        assert bob.inner_text("#log") == "ann: hello from Chromium"
        ann.close()  # ann leaves: bob's page sees it
        bob.wait_for_function("document.getElementById('here').textContent === 'bob'")
