"""The README's first command, ``eventpatterns serve --demo``, clicked through in Chromium.

The command is read from README.md (its first ``console`` block) and run as a
subprocess, as written plus ``--port 0``; two tabs of headless Chromium (Debian's, via
Playwright, as ``tests/realtime/test_browser.py`` launches it) use every part of the
page, and the test takes the screenshot the README and docs/index.md show. It is
written to ``docs/assets/demo.png`` when ``EVENTPATTERNS_SCREENSHOT=1`` (to renew the
committed one) and to the test's temporary folder otherwise, so that a test run leaves
the checkout as it was.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest
from anyio.abc import Process

from realtime.test_browser import CHROMIUM_FLAGS, chromium

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.anyio]
__all__ = ["chromium"]  # the fixture, shared with the real-time browser tests

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SCREENSHOT = ROOT / "docs" / "assets" / "demo.png"
WAIT_MS = 10_000
JOB_MS = 40_000  # the demo job takes about 10 s


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def readme_commands() -> list[str]:
    """The commands (``$ ...`` lines) of README.md's first ``console`` block."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^```console\n(.*?)^```", text, re.M | re.S)
    assert match is not None, "README.md has no console block"
    return [line[2:] for line in match.group(1).splitlines() if line.startswith("$ ")]


def test_readme_starts_with_install_then_the_demo() -> None:
    commands = readme_commands()
    assert commands == [
        "python3 -m venv .venv && . .venv/bin/activate",
        "pip install '.[server]'",
        "eventpatterns serve --demo",
    ]
    assert "http://127.0.0.1:8000/" in README.read_text(encoding="utf-8")


@asynccontextmanager
async def demo_server() -> AsyncIterator[tuple[Process, str]]:
    """Run the README's serve command (on any free port); yield it and the page's URL."""
    program, *args = shlex.split(readme_commands()[-1])
    assert program == "eventpatterns"
    command = [sys.executable, "-m", "eventpatterns.cli", *args, "--port", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    async with await anyio.open_process(command, env=env) as process:
        assert process.stdout is not None
        buffer = b""
        with anyio.fail_after(30):
            while b"Demo:" not in buffer or not buffer.endswith(b"\n"):
                buffer += await process.stdout.receive()
        url = re.search(rb"Demo:\s+(\S+)", buffer)
        assert url is not None
        try:
            yield process, url.group(1).decode()
        finally:
            if process.returncode is None:
                process.kill()


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def open_tab(browser: Browser, url: str) -> Page:
    context = await browser.new_context(
        accept_downloads=True, viewport={"width": 1100, "height": 700}
    )
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(url)
    await page.wait_for_function("() => document.getElementById('state').textContent === 'open'")
    await filter_is_live(page)
    assert errors == []
    return page


async def filter_is_live(page: Page) -> None:
    await page.wait_for_function(
        "() => document.getElementById('filter-status').textContent.startsWith('Live')"
    )


async def publish(page: Page, event: object) -> str:
    """Publish ``event`` from the page; return the status line it shows."""
    await page.fill("#event", json.dumps(event))
    before = await page.text_content("#publish-status")
    await page.click("#publish")
    await page.wait_for_function(
        "(before) => { const s = document.getElementById('publish-status').textContent;"
        " return s !== before && s !== ''; }",
        arg=before,
    )
    return await page.text_content("#publish-status") or ""


async def apply_filter(page: Page, pattern: object) -> None:
    await page.fill("#filter", json.dumps(pattern))
    await page.click("#apply-filter")


async def feed(page: Page) -> list[str]:
    return await page.locator("#feed li").all_text_contents()


async def presence(page: Page) -> list[str]:
    return await page.locator("#presence li").all_text_contents()


async def test_the_readme_demo_in_two_tabs(browser: Browser, tmp_path: Path) -> None:
    renew = os.environ.get("EVENTPATTERNS_SCREENSHOT") == "1"
    screenshot = SCREENSHOT if renew else tmp_path / "demo.png"
    async with demo_server() as (process, url):
        assert url.startswith("http://127.0.0.1:")
        first = await open_tab(browser, url)
        me = await first.text_content("#me")
        assert me is not None
        assert re.fullmatch(r"guest-[a-z0-9]{4}", me)

        # The button publishes the event in the box; the default filter matches it.
        status = await publish(
            first, {"type": "demo.greeting", "source": "/demo", "data": {"message": "hello"}}
        )
        assert "matches the filter" in status
        await first.wait_for_function("() => document.querySelectorAll('#feed li').length === 1")
        assert "demo.greeting" in (await feed(first))[0]
        assert '"message":"hello"' in (await feed(first))[0]

        # Event data is shown as text, never run as HTML.
        hostile = '<img src=x onerror="window.pwned=1"><b>bold</b>'
        await publish(first, {"type": "demo.x", "source": "/<i>s</i>", "data": {"m": hostile}})
        await first.wait_for_function("() => document.querySelectorAll('#feed li').length === 2")
        assert "<img src=x" in (await feed(first))[0]
        assert "/<i>s</i>" in (await feed(first))[0]
        assert await first.locator("#feed img, #feed b, #feed i").count() == 0
        assert await first.evaluate("window.pwned") is None

        # A filter the next event does not match: the page shows the explanation.
        await apply_filter(
            first, {"type": ["demo.order"], "data": {"n": [{"numeric": [">", 100]}]}}
        )
        await filter_is_live(first)
        status = await publish(first, {"type": "demo.order", "source": "/demo", "data": {"n": 5}})
        assert "does not match" in status
        assert await first.is_visible("#explanation")
        explanation = await first.text_content("#explanation") or ""
        assert "FAIL $.data.n" in explanation
        assert "no alternative accepts 5" in explanation
        assert "ok   $.type" in explanation
        # The next one matches; it is after the refused one in the log, so had the
        # refused one been delivered it would be in the feed by now.
        status = await publish(first, {"type": "demo.order", "source": "/demo", "data": {"n": 500}})
        assert "matches the filter" in status
        assert not await first.is_visible("#explanation")
        await first.wait_for_function("() => document.querySelectorAll('#feed li').length === 3")
        items = await feed(first)
        assert '"n":500' in items[0]
        assert not any('"n":5}' in item for item in items)

        # A malformed pattern is refused by the gateway, and the page says so.
        await apply_filter(first, {"type": [{"prefix": 1}]})
        await first.wait_for_function(
            "() => document.getElementById('filter-status').textContent.startsWith('Refused')"
        )
        assert "invalid_pattern" in (await first.text_content("#filter-status") or "")
        await apply_filter(first, {"type": [{"prefix": "demo."}]})
        await filter_is_live(first)

        # Presence: a second tab is a second guest, and both tabs list both.
        second = await open_tab(browser, url)
        other = await second.text_content("#me")
        assert other is not None
        assert other != me
        for page, you in ((first, me), (second, other)):
            await page.wait_for_function(
                "() => document.querySelectorAll('#presence li').length === 2"
            )
            assert sorted(await presence(page)) == sorted(
                [f"{you} (you)", (other if you == me else me)]
            )

        # The job: progress pushed live, to 100%, then the result link downloads it.
        await first.click("#start-job")
        await first.wait_for_function(
            "() => { const v = document.getElementById('job-progress').value;"
            " return v > 0 && v < 100; }"
        )
        assert "running" in (await first.text_content("#job-state") or "")
        await first.wait_for_function(
            "() => document.getElementById('job-progress').value === 100", timeout=JOB_MS
        )
        await first.wait_for_selector("#job-result:not([hidden])", timeout=JOB_MS)
        assert (await first.text_content("#job-percent")) == "100%"
        assert "succeeded" in (await first.text_content("#job-state") or "")
        job_id = await first.evaluate("window.demo.job")
        async with first.expect_download() as download_info:
            await first.click("#job-result")
        download = await download_info.value
        assert download.suggested_filename == "demo-result.json"
        path = await download.path()
        result = json.loads(await anyio.Path(path).read_text(encoding="utf-8"))
        assert result == {"job": job_id, "steps": 20, "squares": [n * n for n in range(1, 21)]}

        # For the screenshot: an event the filter refuses, with its explanation.
        status = await publish(
            first, {"type": "order.created", "source": "/shop", "data": {"n": 7}}
        )
        assert "does not match" in status
        assert "FAIL $.type" in (await first.text_content("#explanation") or "")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        await first.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.read_bytes().startswith(b"\x89PNG")

        # The second tab goes: the first lists itself alone.
        await second.context.close()
        await first.wait_for_function(
            "() => document.querySelectorAll('#presence li').length === 1"
        )
        assert await presence(first) == [f"{me} (you)"]

        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            assert await process.wait() == 0
