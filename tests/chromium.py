"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

Playwright's own browser download fails here (no internet), so the tests drive the
system package (``.ci/run`` installs it). Where either is missing the calling
module is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def require_chromium() -> Any:
    """Playwright's sync API; skips the calling test module when there is no browser."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed: no browser to drive",
                    allow_module_level=True)
    return pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """One headless Chromium for a module's tests, closed after them."""
    sync_api = require_chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS,
                                             headless=True)
        try:
            yield browser
        finally:
            browser.close()
