"""The Users and API tokens page in a real browser (headless Chromium, Playwright).

An admin signs in through the form, creates an API token with an expiry, reads it
once from the page, uses it against the REST API, revokes it (accepting the
browser's confirmation) and sees the API refuse it; at 1366×900 and on a 390×844
phone, where nothing may be wider than the screen. Screenshots are saved in
``test-artifacts/screenshots/users-*.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import launched_chromium, require_chromium

require_chromium()

from saleskpi.domain.settings import Settings  # noqa: E402
from saleskpi.service.auth import add_user  # noqa: E402
from saleskpi.service.core import SalesKpiService  # noqa: E402
from saleskpi.surfaces.server import create_app  # noqa: E402
from tests.servers import serve  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "browser-test-password"
REPS = "id,name,team\nr1,Ann,North\nr2,Bob,South\n"
DEALS = "id,rep_id,status,amount,closed_at\nd1,r1,won,100,2024-01-10\n"
USERS = {"b_admin": ("admin", None, None), "b_head": ("head", None, None),
         "b_lead": ("team_lead", None, "North"), "b_rep": ("rep", "r1", None),
         "b_long_user_name_of_a_rep": ("rep", "r2", None)}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("browser-users")
    data = root / "data"
    data.mkdir()
    (data / "reps.csv").write_text(REPS, encoding="utf-8")
    (data / "deals.csv").write_text(DEALS, encoding="utf-8")
    settings = Settings(workspace=root / "ws")
    report = SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    for name, (role, rep, team) in USERS.items():
        add_user(settings, name, PASSWORD, role, rep_id=rep, team=team)
    with serve(create_app(settings)) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as chromium:
        yield chromium


def _sign_in(browser: Any, url: str, username: str, viewport: dict[str, int],
             problems: list[str]) -> Any:
    page = browser.new_context(viewport=viewport, locale="en-GB").new_page()
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("response", lambda response: problems.append(
        f"HTTP {response.status} for {response.url}")
        if response.status >= 400 and response.request.resource_type != "document" else None)
    page.goto(url + "/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click('form[action^="/login"] button[type="submit"]')
    return page


def _fits(page: Any, width: int) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"the page is {wide}px wide on a {width}px screen"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366", "phone-390"])
def test_an_admin_creates_and_revokes_a_token(browser: Any, url: str,
                                              viewport: dict[str, int]) -> None:
    problems: list[str] = []
    page = _sign_in(browser, url, "b_admin", viewport, problems)
    width = viewport["width"]
    try:
        if width < 720:  # the menu folds behind its button on a phone
            page.click("label.nav-button")
        with page.expect_navigation():
            page.click('nav a[href="/users"]')
        assert page.url == url + "/users"
        users = page.locator('table[data-table="users"] tbody tr')
        assert users.count() == len(USERS)
        _fits(page, width)
        page.screenshot(path=str(_shot(f"users-{width}.png")), full_page=True)

        name = f"nightly-{width}"
        page.fill('#new-token input[name="name"]', name)
        page.fill('#new-token input[name="days"]', "30")
        with page.expect_navigation():
            page.click('#new-token button[type="submit"]')
        secret = page.locator("code[data-token]").inner_text().strip()
        assert secret.startswith("skpi_")
        assert page.locator("section.issued").is_visible()
        _fits(page, width)
        page.screenshot(path=str(_shot(f"users-token-shown-{width}.png")), full_page=True)
        api = page.context.request
        me = api.get(url + "/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.status == 200 and me.json()["user"]["username"] == "b_admin"

        row = page.locator('table[data-table="tokens"] tbody tr', has_text=name)
        assert row.get_attribute("data-row") == "active"
        # Revoking asks first; dismissing keeps the token.
        page.once("dialog", lambda dialog: dialog.dismiss())
        row.locator('button[data-action="revoke"]').click()
        page.wait_for_timeout(300)
        assert api.get(url + "/api/v1/me",
                       headers={"Authorization": f"Bearer {secret}"}).status == 200
        asked: list[str] = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
        with page.expect_navigation():
            row.locator('button[data-action="revoke"]').click()
        assert asked and "Revoke this token" in asked[0]
        assert "revoked" in page.locator('p.ok[role="status"]').inner_text()
        assert secret not in page.content()  # shown once only
        revoked = page.locator('table[data-table="tokens"] tbody tr', has_text=name)
        assert revoked.get_attribute("data-row") == "revoked"
        assert revoked.locator('button[data-action="revoke"]').count() == 0
        assert api.get(url + "/api/v1/me",
                       headers={"Authorization": f"Bearer {secret}"}).status == 401
        _fits(page, width)
        page.screenshot(path=str(_shot(f"users-token-revoked-{width}.png")), full_page=True)
        assert not problems, problems
    finally:
        page.context.close()


def test_a_rep_is_refused_the_page(browser: Any, url: str) -> None:
    problems: list[str] = []
    page = _sign_in(browser, url, "b_rep", DESKTOP, problems)
    try:
        assert page.locator('nav a[href="/users"]').count() == 0
        response = page.goto(url + "/users")
        assert response is not None and response.status == 403
    finally:
        page.context.close()


def _shot(name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / name
