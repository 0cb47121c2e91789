"""Sessions, tokens, users and sign-in throttling as an attacker would try them.

Each test reproduces a failure of issue 16 (items 5 and 6) against the real app:
a copied session cookie working after logout, tokens that never expire and cannot
be revoked, users that cannot be disabled, a throttle that a different
X-Forwarded-For per guess or a spray across user names went around.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from saleskpi.domain.settings import Settings
from saleskpi.service.auth import add_user
from saleskpi.surfaces.server import SESSION_COOKIE, create_app, server_config
from tests.servers import serve

PASSWORD = "correct horse battery"
USERS = {
    "boss": "admin",  # the only admin
    "head": "head",
    "api_user": "rep",
    "web_user": "rep",
    "everywhere": "rep",
    "tokens": "rep",
    "other_rep": "rep",
    "to_disable": "rep",
    "to_delete": "rep",
    "victim": "rep",
    "proxied": "rep",
}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(workspace=tmp_path_factory.mktemp("sessions") / "ws", _env_file=None)
    for name, role in USERS.items():
        add_user(settings, name, PASSWORD, role, rep_id="r1" if role == "rep" else None)
    return settings


@pytest.fixture(scope="module")
def app(settings: Settings) -> Any:
    return create_app(settings)


def api_sign_in(app: Any, username: str, **client: Any) -> tuple[TestClient, str]:
    session = TestClient(app, **client)
    response = session.post("/api/v1/session", json={"username": username,
                                                     "password": PASSWORD})
    assert response.status_code == 200, response.text
    return session, response.json()["csrf"]


def form_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def with_cookie(app: Any, cookie: str) -> TestClient:
    """A new client that sends only ``cookie``: a copy of someone's session cookie."""
    return TestClient(app, cookies={SESSION_COOKIE: cookie})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code, response.text


# -- sessions -------------------------------------------------------------------------
def test_api_cookie_is_refused_after_logout(app: Any) -> None:
    client, csrf = api_sign_in(app, "api_user")
    copied = client.cookies[SESSION_COOKIE]
    assert with_cookie(app, copied).get("/api/v1/me").status_code == 200
    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).json() == {
        "ok": True}
    assert_problem(with_cookie(app, copied).get("/api/v1/me"), 401, "not_signed_in")
    assert_problem(client.get("/api/v1/me"), 401, "not_signed_in")
    again, _csrf = api_sign_in(app, "api_user")  # signing in again works, of course
    assert again.get("/api/v1/me").json()["user"]["username"] == "api_user"


def test_web_cookie_is_refused_after_logout(app: Any) -> None:
    browser = TestClient(app)
    signed_in = browser.post("/login", follow_redirects=False, data={
        "username": "web_user", "password": PASSWORD,
        "csrf": form_csrf(browser.get("/login").text)})
    assert signed_in.status_code == 303
    copied = browser.cookies[SESSION_COOKIE]
    assert with_cookie(app, copied).get("/logout", follow_redirects=False).status_code == 200
    out = browser.post("/logout", follow_redirects=False,
                       data={"csrf": form_csrf(browser.get("/logout").text)})
    assert out.status_code == 303
    replay = with_cookie(app, copied).get("/logout", follow_redirects=False)
    assert replay.status_code == 302 and replay.headers["location"].startswith("/login")
    assert_problem(with_cookie(app, copied).get("/api/v1/me"), 401, "not_signed_in")


def test_logout_ends_every_session_of_the_user(app: Any) -> None:
    laptop, csrf = api_sign_in(app, "everywhere")
    phone, _csrf = api_sign_in(app, "everywhere")
    laptop.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
    assert_problem(phone.get("/api/v1/me"), 401, "not_signed_in")


def test_secure_cookies(settings: Settings, run_cli: Any) -> None:
    client, _csrf = api_sign_in(create_app(settings, secure_cookies=True), "head",
                                base_url="https://testserver")
    assert client.cookies[SESSION_COOKIE]
    plain = TestClient(create_app(settings, secure_cookies=True)).post(
        "/api/v1/session", json={"username": "head", "password": PASSWORD})
    cookie = plain.headers["set-cookie"]
    assert "secure" in [p.strip().lower() for p in cookie.split(";")], cookie
    default = TestClient(create_app(settings)).post(
        "/api/v1/session", json={"username": "head", "password": PASSWORD})
    assert "secure" not in default.headers["set-cookie"].lower()
    usage = run_cli(settings.workspace, "serve", "--help")
    assert usage.returncode == 0 and "--secure-cookies" in usage.stdout


def _cookie_flags(response: Any) -> list[str]:
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith(SESSION_COOKIE + "="))
    return [p.strip().lower() for p in cookie.split(";")[1:]]


def _sign_in(client: TestClient, **headers: str) -> Any:
    response = client.post("/api/v1/session", headers=headers,
                           json={"username": "head", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response


def test_cookies_are_secure_over_https_without_the_option(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"trusted_proxies": ["10.0.0.0/24"]}))
    # Straight over HTTPS (uvicorn serving TLS): Secure; over plain HTTP: not.
    assert "secure" in _cookie_flags(_sign_in(TestClient(app, base_url="https://testserver")))
    assert "secure" not in _cookie_flags(_sign_in(TestClient(app)))
    # The web form's cookie too.
    form = TestClient(app, base_url="https://testserver")
    page = form.post("/login", data={"username": "head", "password": PASSWORD,
                                     "csrf": form_csrf(form.get("/login").text)},
                     follow_redirects=False)
    assert page.status_code == 303 and "secure" in _cookie_flags(page)
    # Through a trusted proxy that terminated TLS: Secure.
    proxy = TestClient(app, client=("10.0.0.2", 4000))
    assert "secure" in _cookie_flags(_sign_in(proxy, **{"X-Forwarded-Proto": "https"}))
    assert "secure" not in _cookie_flags(_sign_in(proxy, **{"X-Forwarded-Proto": "http"}))
    # Anybody else's X-Forwarded-Proto is ignored.
    stranger = TestClient(app, client=("192.0.2.7", 4000))
    assert "secure" not in _cookie_flags(_sign_in(stranger, **{"X-Forwarded-Proto": "https"}))
    # Other attributes stay as they were; the flag is not doubled with the option.
    flags = _cookie_flags(_sign_in(TestClient(create_app(settings, secure_cookies=True),
                                              base_url="https://testserver")))
    assert flags.count("secure") == 1 and "httponly" in flags and "samesite=lax" in flags


# -- tokens ---------------------------------------------------------------------------
def _token_row(settings: Settings, token_id: int, **values: Any) -> None:
    """Change a stored token row (as time passing would)."""
    path = settings.workspace / "state.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        for column, value in values.items():
            db.execute(f"UPDATE api_tokens SET {column} = ? WHERE id = ?", (value, token_id))


def test_expired_token_is_refused(app: Any, settings: Settings) -> None:
    client, csrf = api_sign_in(app, "tokens")
    before = dt.datetime.now(dt.UTC)
    issued = client.post("/api/v1/tokens", headers={"X-CSRF-Token": csrf},
                         json={"name": "week", "days": 7})
    assert issued.status_code == 201, issued.text
    body = issued.json()
    expires = dt.datetime.fromisoformat(body["expires"]).replace(tzinfo=dt.UTC)
    assert before + dt.timedelta(days=7) - dt.timedelta(seconds=5) <= expires \
        <= dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    script = TestClient(app)
    assert script.get("/api/v1/me", headers=bearer(body["token"])).status_code == 200
    listed = {t["id"]: t for t in client.get("/api/v1/tokens").json()["tokens"]}
    assert listed[body["id"]]["expires"] is not None
    assert listed[body["id"]]["revoked"] is None
    # A week later (the stored expiry moved to a second ago):
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).replace(tzinfo=None)
    _token_row(settings, body["id"], expires_at=past.isoformat(sep=" "))
    assert_problem(script.get("/api/v1/me", headers=bearer(body["token"])), 401, "bad_token")
    for days in (0, -1, 100_000):
        bad = client.post("/api/v1/tokens", headers={"X-CSRF-Token": csrf},
                          json={"name": "x", "days": days})
        assert_problem(bad, 422, "invalid_request")


def test_revoked_token_is_refused(app: Any, settings: Settings, run_cli: Any) -> None:
    owner, csrf = api_sign_in(app, "tokens")
    script = TestClient(app)
    first = owner.post("/api/v1/tokens", headers={"X-CSRF-Token": csrf},
                       json={"name": "first"}).json()
    second = owner.post("/api/v1/tokens", headers={"X-CSRF-Token": csrf},
                        json={"name": "second"}).json()
    assert first["expires"] is None
    assert script.get("/api/v1/me", headers=bearer(first["token"])).status_code == 200
    # Another rep may not revoke it, and does not learn that it exists.
    other, other_csrf = api_sign_in(app, "other_rep")
    assert_problem(other.delete(f"/api/v1/tokens/{first['id']}",
                                headers={"X-CSRF-Token": other_csrf}), 404, "unknown_token")
    assert_problem(other.get("/api/v1/tokens", params={"username": "tokens"}), 403,
                   "forbidden")
    # The owner revokes it (with the token itself, as a script would).
    revoked = script.delete(f"/api/v1/tokens/{first['id']}", headers=bearer(first["token"]))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked"]["revoked"] is not None
    assert_problem(script.get("/api/v1/me", headers=bearer(first["token"])), 401, "bad_token")
    assert script.get("/api/v1/me", headers=bearer(second["token"])).status_code == 200
    # A manager revokes anyone's: through the API, or the CLI.
    head, head_csrf = api_sign_in(app, "head")
    theirs = head.get("/api/v1/tokens", params={"username": "tokens"}).json()["tokens"]
    assert {t["name"] for t in theirs} >= {"first", "second"}
    cli = run_cli(settings.workspace, "user", "revoke-token", "tokens", second["id"])
    assert cli.returncode == 0, cli.stderr
    assert_problem(script.get("/api/v1/me", headers=bearer(second["token"])), 401, "bad_token")
    third = run_cli(settings.workspace, "user", "token", "tokens", "--name", "cli",
                    "--days", "30")
    assert third.returncode == 0, third.stderr
    token = third.stdout.strip()
    assert script.get("/api/v1/me", headers=bearer(token)).status_code == 200
    listed = run_cli(settings.workspace, "user", "tokens", "tokens", "--format", "json").json()
    cli_token = next(t for t in listed["tokens"] if t["name"] == "cli")
    assert cli_token["expires"] is not None and cli_token["revoked"] is None
    assert head.delete(f"/api/v1/tokens/{cli_token['id']}",
                       headers={"X-CSRF-Token": head_csrf}).status_code == 200
    assert_problem(script.get("/api/v1/me", headers=bearer(token)), 401, "bad_token")
    wrong_owner = run_cli(settings.workspace, "user", "revoke-token", "head", cli_token["id"])
    assert wrong_owner.returncode == 2 and "no API token" in wrong_owner.stderr


# -- users ----------------------------------------------------------------------------
def _user_id(client: TestClient, username: str) -> int:
    users = client.get("/api/v1/users").json()["users"]
    return int(next(u["id"] for u in users if u["username"] == username))


def test_disabled_user_is_refused_at_once(app: Any, settings: Settings, run_cli: Any) -> None:
    session, _csrf = api_sign_in(app, "to_disable")
    copied = session.cookies[SESSION_COOKIE]
    token = run_cli(settings.workspace, "user", "token", "to_disable").stdout.strip()
    script = TestClient(app)
    assert script.get("/api/v1/me", headers=bearer(token)).status_code == 200
    head, csrf = api_sign_in(app, "head")
    user_id = _user_id(head, "to_disable")
    # A rep may not.
    rep, rep_csrf = api_sign_in(app, "other_rep")
    assert_problem(rep.patch(f"/api/v1/users/{user_id}", headers={"X-CSRF-Token": rep_csrf},
                             json={"disabled": True}), 403, "forbidden")
    changed = head.patch(f"/api/v1/users/{user_id}", headers={"X-CSRF-Token": csrf},
                         json={"disabled": True})
    assert changed.status_code == 200, changed.text
    assert changed.json()["disabled"] is True
    assert_problem(session.get("/api/v1/me"), 401, "not_signed_in")
    assert_problem(with_cookie(app, copied).get("/api/v1/me"), 401, "not_signed_in")
    assert_problem(script.get("/api/v1/me", headers=bearer(token)), 401, "bad_token")
    assert_problem(TestClient(app).post("/api/v1/session", json={
        "username": "to_disable", "password": PASSWORD}), 401, "bad_credentials")
    listed = run_cli(settings.workspace, "user", "list", "--format", "json").json()
    assert {u["username"]: u["disabled"] for u in listed["users"]}["to_disable"] is True
    # Enabled again (CLI): the token works again, the old session stays ended.
    enabled = run_cli(settings.workspace, "user", "enable", "to_disable")
    assert enabled.returncode == 0 and "enabled" in enabled.stdout
    assert script.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert_problem(with_cookie(app, copied).get("/api/v1/me"), 401, "not_signed_in")
    disabled = run_cli(settings.workspace, "user", "disable", "to_disable")
    assert disabled.returncode == 0, disabled.stderr
    assert_problem(script.get("/api/v1/me", headers=bearer(token)), 401, "bad_token")


def test_admins_cannot_lock_themselves_or_everyone_out(app: Any, settings: Settings,
                                                       run_cli: Any) -> None:
    boss, csrf = api_sign_in(app, "boss")
    boss_id = _user_id(boss, "boss")
    assert_problem(boss.patch(f"/api/v1/users/{boss_id}", headers={"X-CSRF-Token": csrf},
                              json={"disabled": True}), 403, "own_account")
    assert_problem(boss.delete(f"/api/v1/users/{boss_id}", headers={"X-CSRF-Token": csrf}),
                   403, "own_account")
    head, head_csrf = api_sign_in(app, "head")
    assert_problem(head.patch(f"/api/v1/users/{boss_id}", headers={"X-CSRF-Token": head_csrf},
                              json={"disabled": True}), 403, "forbidden")
    # The CLI may change anyone, but not leave the workspace without an admin.
    for args in (("disable", "boss"), ("delete", "boss", "--yes")):
        last = run_cli(settings.workspace, "user", *args)
        assert last.returncode == 2 and "last admin" in last.stderr, last
    assert boss.get("/api/v1/me").status_code == 200
    assert_problem(boss.patch("/api/v1/users/99999", headers={"X-CSRF-Token": csrf},
                              json={"disabled": True}), 404, "unknown_user")


def test_deleted_user_is_refused_at_once(app: Any, settings: Settings, run_cli: Any) -> None:
    session, _csrf = api_sign_in(app, "to_delete")
    token = run_cli(settings.workspace, "user", "token", "to_delete").stdout.strip()
    head, csrf = api_sign_in(app, "head")
    user_id = _user_id(head, "to_delete")
    deleted = head.delete(f"/api/v1/users/{user_id}", headers={"X-CSRF-Token": csrf})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"]["username"] == "to_delete"
    assert_problem(session.get("/api/v1/me"), 401, "not_signed_in")
    assert_problem(TestClient(app).get("/api/v1/me", headers=bearer(token)), 401, "bad_token")
    assert "to_delete" not in {u["username"] for u in head.get("/api/v1/users").json()["users"]}
    # The CLI asks first, and deletes with --yes.
    add_user(settings, "cli_delete", PASSWORD, "rep", rep_id="r1")
    gone = run_cli(settings.workspace, "user", "delete", "cli_delete", "--yes")
    assert gone.returncode == 0 and "deleted" in gone.stdout, gone.stderr
    missing = run_cli(settings.workspace, "user", "delete", "cli_delete", "--yes")
    assert missing.returncode == 2 and "no user" in missing.stderr


# -- throttling -----------------------------------------------------------------------
@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` under uvicorn with ``saleskpi serve``'s own configuration; its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = server_config(app, host="127.0.0.1", port=port)
    config.log_level = "warning"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


def _guess(client: Any, username: str, forwarded: str | None = None,
           password: str = "wrong password") -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = client.post("/api/v1/session", headers=headers,
                           json={"username": username, "password": password})
    return int(response.status_code)


def test_a_new_forwarded_address_per_guess_does_not_reset_the_account_lock(
        settings: Settings) -> None:
    # Under uvicorn as the tests' helper runs it (uvicorn's defaults believe
    # X-Forwarded-For from 127.0.0.1): every guess seemed to come from elsewhere.
    with serve(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        codes = [_guess(client, "victim", f"198.51.100.{i}") for i in range(20)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
        assert _guess(client, "victim", "198.51.100.99", PASSWORD) == 429


def test_serve_ignores_forwarded_addresses_by_default(settings: Settings) -> None:
    # Spraying names, each guess "from" another address: still one address.
    with served(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        codes = [_guess(client, f"nobody{i}", f"203.0.113.{i}") for i in range(25)]
        assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}, codes


def test_spraying_user_names_from_one_address_is_limited(settings: Settings) -> None:
    app = create_app(settings)
    client = TestClient(app)
    codes = [_guess(client, f"spray{i}") for i in range(60)]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}, codes
    # Another address is not locked out; the page says the same.
    assert _guess(TestClient(app, client=("192.0.2.10", 4000)), "spray99") == 401
    form = TestClient(app)
    html = form.get("/login").text
    page = form.post("/login", data={"username": "head", "password": "x",
                                     "csrf": form_csrf(html)})
    assert page.status_code == 429


def test_a_configured_proxy_is_believed(settings: Settings) -> None:
    proxied = settings.model_copy(update={"trusted_proxies": ["10.0.0.0/24"]})
    app = create_app(proxied)
    proxy = TestClient(app, client=("10.0.0.1", 4000))
    codes = [_guess(proxy, f"behind{i}", "203.0.113.7") for i in range(22)]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}, codes
    # Another client behind the same proxy is not locked out ...
    assert _guess(proxy, "behind99", "203.0.113.8") == 401
    # ... and a chain of trusted proxies is walked back to the client.
    assert _guess(proxy, "behind98", "203.0.113.7, 10.0.0.5") == 429
    assert _guess(proxy, "behind97", "203.0.113.9, 10.0.0.5") == 401
    assert _guess(proxy, "proxied", "203.0.113.9", PASSWORD) == 200
    # An untrusted peer's header is ignored: its guesses count against itself.
    stranger = TestClient(app, client=("192.0.2.50", 4000))
    codes = [_guess(stranger, f"out{i}", f"203.0.113.{100 + i}") for i in range(21)]
    assert codes[20] == 429


def test_failed_sign_ins_are_limited_globally(settings: Settings) -> None:
    from saleskpi.surfaces.http.deps import LoginThrottle

    app = create_app(settings.model_copy(update={"trusted_proxies": ["10.0.0.1"]}))
    app.state.login_throttle = LoginThrottle(globally=30, trusted_proxies=["10.0.0.1"])
    proxy = TestClient(app, client=("10.0.0.1", 4000))
    # Every guess from another address, for another name: only the global count grows.
    codes = [_guess(proxy, f"global{i}", f"198.18.0.{i}") for i in range(35)]
    assert codes[:30] == [401] * 30 and set(codes[30:]) == {429}, codes


def test_trusted_proxies_setting_is_checked(tmp_path: Path) -> None:
    assert Settings(workspace=tmp_path, _env_file=None).trusted_proxies == []
    parsed = Settings(workspace=tmp_path, _env_file=None, trusted_proxies="10.0.0.1, ::1")
    assert parsed.trusted_proxies == ["10.0.0.1", "::1"]
    with pytest.raises(ValueError, match="not an IP address"):
        Settings(workspace=tmp_path, _env_file=None, trusted_proxies=["proxy.local"])


def test_a_throttled_sign_in_says_when_to_try_again(settings: Settings) -> None:
    from saleskpi.surfaces.http.deps import LoginThrottle

    app = create_app(settings)
    app.state.login_throttle = LoginThrottle(attempts=3, window=120.0)
    client = TestClient(app)
    assert [_guess(client, "waiter") for _ in range(3)] == [401] * 3
    refused = client.post("/api/v1/session", json={"username": "waiter", "password": "x"})
    assert refused.status_code == 429 and refused.json()["error"] == "too_many_attempts"
    # The oldest of the three failures ages out of the 120 s window first.
    assert 110 <= int(refused.headers["Retry-After"]) <= 120, refused.headers
    html = client.get("/login").text
    page = client.post("/login", data={"username": "waiter", "password": "x",
                                       "csrf": form_csrf(html)})
    assert page.status_code == 429 and 110 <= int(page.headers["Retry-After"]) <= 120
    # A refused answer is not a failure: it does not push the wait further.
    assert int(client.post("/api/v1/session", json={"username": "waiter", "password": "x"},
                           ).headers["Retry-After"]) <= 120
    # Not throttled: no Retry-After.
    assert "retry-after" not in client.post(
        "/api/v1/session", json={"username": "other", "password": "x"}).headers
