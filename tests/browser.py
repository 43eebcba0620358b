"""Open a report in headless Chromium (Debian's /usr/bin/chromium, driven by playwright) and record what it does."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass
class Opened:
    """The loaded page, its file:// URL, and every console error and request seen while it loaded."""

    page: object
    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@contextmanager
def headless_page(path: Path):
    """Skip the test where Chromium or playwright is missing; else yield an `Opened` page of `path`."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    opened = Opened(page=None, url=Path(path).resolve().as_uri())
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda msg: msg.type == "error" and opened.errors.append(msg.text))
            page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
            page.on("request", lambda req: opened.requests.append(req.url))
            page.goto(opened.url, wait_until="load")
            opened.page = page
            yield opened
        finally:
            browser.close()
