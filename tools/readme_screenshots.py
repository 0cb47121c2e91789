"""Retake the README's pictures from the demo, as a new user sees it after `saleskpi demo`.

    python tools/readme_screenshots.py

Builds the demo company in a scratch workspace, starts `saleskpi serve` on a free port,
signs in as the head of sales in Debian's Chromium and saves the overview (its default,
month to date, with the plans and their pacing) to docs/img/dashboard.png (desktop) and
docs/img/dashboard-phone.png (390 x 844).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/login", timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server at {url} did not answer within {seconds:.0f} s")


def sign_in(page: Page, url: str) -> None:
    page.goto(url + "/login")
    page.fill('input[name="username"]', "head")
    page.fill('input[name="password"]', "head-demo-pass")
    with page.expect_navigation():
        page.click('form[action^="/login"] button[type="submit"]')


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "SALESKPI_WORKSPACE": scratch}
        saleskpi = [sys.executable, "-m", "saleskpi"]
        subprocess.run([*saleskpi, "demo", "--quiet"], env=env, check=True, cwd=scratch)
        port = free_port()
        server = subprocess.Popen([*saleskpi, "serve", "--port", str(port), "--sync-every", "0"],
                                  env=env, cwd=scratch)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(url)
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                for name, viewport, full in (("dashboard.png", (1280, 900), True),
                                             ("dashboard-phone.png", (390, 844), False)):
                    context = browser.new_context(
                        viewport={"width": viewport[0], "height": viewport[1]})
                    page = context.new_page()
                    sign_in(page, url)
                    page.goto(url + "/")
                    page.screenshot(path=str(DOCS_IMG / name), full_page=full)
                    context.close()
                    print(f"saved docs/img/{name}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
