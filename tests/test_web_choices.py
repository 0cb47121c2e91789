"""The dashboard's kept choices, drill-down links and translations (issue 13, web).

On tests/test_web.py's hand-counted company (its module docstring):

    rep  team   won deals (closed)                    calls  meetings
    r1   North  d1 100 (01-10), d6 200 (02-20)         30     6
    r2   North  d3 50 (01-12)                          20     5
    r3   South  d4 70 (01-13), d5 30 (02-13)           10     2
    r4   South  none (d8 lost 03-05)                   0      0
    r5, r6 South nothing at all                        0      0
"""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.schema import ENTITIES
from saleskpi.domain.settings import Settings
from saleskpi.service.preferences import preferences
from saleskpi.surfaces.web.overview import HEADLINE
from tests import test_web
from tests.test_web import REPS, form_csrf, read, sign_in

# The hand-counted company of tests/test_web.py, built again for this module.
settings = test_web.settings
app = test_web.app
clients = test_web.clients

Q1 = {"from": "2024-01-01", "to": "2024-03-31"}


def _csrf(client: TestClient) -> str:
    return form_csrf(client.get("/logout").text)


def _keep(client: TestClient, view: str, kpis: list[str], **extra: str) -> Any:
    data: dict[str, Any] = {"csrf": _csrf(client), "page": view, "kpi": kpis,
                            "next": f"/{'' if view == 'overview' else view}?kpi=calls", **extra}
    return client.post("/preferences/kpis", data=data, follow_redirects=False)


# -- the KPIs shown, kept per user ---------------------------------------------------------
def test_overview_kpis_are_chosen_and_kept_per_user(clients: dict[str, TestClient],
                                                    settings: Settings) -> None:
    head, admin = clients["w_head"], clients["w_admin"]
    response = _keep(head, "overview", ["calls", "revenue"])
    assert response.status_code == 303
    assert response.headers["location"] == "/"  # the page's own ?kpi= would hide the choice
    try:
        shown = [c.attrs["data-kpi"] for c in read(head.get("/").text).kpis("headline")]
        assert shown == ["calls", "revenue"]
        # Kept in the state store, for this user only.
        again = sign_in(head.app, "w_head")
        assert [c.attrs["data-kpi"] for c in read(again.get("/").text).kpis("headline")] == [
            "calls", "revenue"]
        assert [c.attrs["data-kpi"] for c in read(admin.get("/").text).kpis("headline")] == list(
            HEADLINE)
    finally:
        assert _keep(head, "overview", [], reset="1").status_code == 303
    assert [c.attrs["data-kpi"] for c in read(head.get("/").text).kpis("headline")] == list(
        HEADLINE)


def test_a_bad_choice_is_refused(clients: dict[str, TestClient]) -> None:
    head = clients["w_head"]
    assert _keep(head, "overview", ["no_such_kpi"]).status_code == 400
    assert _keep(head, "elsewhere", ["calls"]).status_code == 400
    assert _keep(head, "compare", ["calls"], threshold="lots").status_code == 400
    token = _csrf(head)
    response = head.post("/preferences/kpis", data={"csrf": "forged", "page": "overview",
                                                    "kpi": ["calls"]}, follow_redirects=False)
    assert response.status_code == 403 and token


def test_compare_colours_only_beyond_the_kept_threshold(clients: dict[str, TestClient],
                                                        settings: Settings) -> None:
    head = clients["w_head"]
    assert _keep(head, "compare", ["calls", "meetings"], threshold="40").status_code == 303
    try:
        html = head.get("/compare?range=all").text
        page = read(html)
        marks = {(c.attrs.get("data-rep"), c.attrs["data-kpi"]): c.attrs.get("data-mark")
                 for c in page.kpis("comparison") if c.row == "item"}
        # Calls: the average is over the active reps r1, r2, r3 only: (30 + 20 + 10) / 3 = 20.
        # r1 +50 % and r3 -50 % are beyond 40 %, r2 (equal) is not.
        assert (marks["r1", "calls"], marks["r2", "calls"], marks["r3", "calls"]) == (
            "better", None, "worse")
        # Meetings: (6 + 5 + 2) / 3 = 4.33: r1 +38 % is within 40 %, r3 -54 % is not.
        assert (marks["r1", "meetings"], marks["r3", "meetings"]) == (None, "worse")
        average = {c.attrs["data-kpi"]: c.value for c in page.kpis("comparison")
                   if c.row == "average"}
        assert average["calls"] == 20 and average["meetings"] == pytest.approx(13 / 3)
        assert 'class="legend" data-threshold="0.4"' in html
        assert preferences(_service(settings), _user_id(settings, "w_head")).threshold == 0.4
    finally:
        _keep(head, "compare", [], reset="1", threshold="20")


def _service(settings: Settings) -> Any:
    from saleskpi.service.core import SalesKpiService

    return SalesKpiService(settings)


def _user_id(settings: Settings, username: str) -> int:
    from saleskpi.service.auth import list_users

    return next(u.user_id for u in list_users(settings) if u.username == username)


# -- language ------------------------------------------------------------------------------
def test_the_language_is_switched_on_any_page_and_kept(app: Any) -> None:
    lead = sign_in(app, "w_lead")
    page = lead.get("/compare?from=2024-01-01").text
    assert '<html lang="en">' in page and 'action="/preferences/language"' in page
    response = lead.post("/preferences/language", follow_redirects=False, data={
        "csrf": form_csrf(page), "lang": "ru", "next": "/compare?from=2024-01-01"})
    assert response.status_code == 303
    assert response.headers["location"] == "/compare?from=2024-01-01"
    try:
        assert '<html lang="ru">' in lead.get("/compare").text
        assert '<html lang="ru">' in sign_in(app, "w_lead").get("/funnel").text  # kept
        bad = lead.post("/preferences/language", follow_redirects=False, data={
            "csrf": form_csrf(page), "lang": "xx", "next": "/"})
        assert bad.status_code == 400
        away = lead.post("/preferences/language", follow_redirects=False, data={
            "csrf": form_csrf(page), "lang": "en", "next": "https://evil.example/"})
        assert away.headers["location"] == "/"  # only a path of this site
    finally:
        lead.post("/preferences/language", data={"csrf": form_csrf(page), "lang": "en",
                                                  "next": "/"})
    assert '<html lang="en">' in lead.get("/").text


def test_a_visitor_chooses_the_sign_in_pages_language(app: Any) -> None:
    visitor = TestClient(app)
    assert '<html lang="en">' in visitor.get("/login").text
    response = visitor.get("/language/uk", params={"next": "/login?next=/compare"},
                           follow_redirects=False)
    assert response.status_code == 303
    assert '<html lang="uk">' in visitor.get("/login").text
    assert visitor.get("/language/xx").status_code == 404


# -- drill-down ----------------------------------------------------------------------------
def _link(html: str, table: str, kpi: str, rep: str | None = None) -> str:
    rep_part = rf'[^>]*data-rep="{rep}"' if rep else ""
    match = re.search(rf'data-kpi="{kpi}"{rep_part}[^>]*><a href="([^"]+)"', html)
    assert match, f"no link behind {kpi} in {table}"
    return match.group(1).replace("&amp;", "&")


def _total(client: TestClient, href: str) -> int:
    response = client.get(href)
    assert response.status_code == 200, response.text
    match = re.search(r'data-total="(\d+)"', response.text)
    assert match
    return int(match.group(1))


def test_every_number_leads_to_the_records_behind_it(clients: dict[str, TestClient]) -> None:
    head, rep = clients["w_head"], clients["w_rep"]
    overview = head.get("/", params=Q1).text
    href = _link(overview, "headline", "deals_won")
    assert href.startswith("/rows?") and "from=2024-01-01" in href
    assert _total(head, href) == 5  # d1, d3, d4, d5, d6: won in the first quarter
    # A rate: its numerator, then its denominator (the deals closed: d2 and d8 lost too).
    win_rate = _link(overview, "headline", "win_rate")
    assert _total(head, win_rate) == 5
    assert _total(head, win_rate + "&part=denominator") == 7
    # The comparison: one rep's figure.
    compare = head.get("/compare", params=Q1).text
    assert _total(head, _link(compare, "comparison", "deals_won", "r3")) == 2  # d4, d5
    # A rep sees only their own rows, whatever the link asks for.
    own = _link(rep.get("/", params=Q1).text, "headline", "deals_won")
    assert _total(rep, own) == 2  # d1, d6
    # Another rep in the link is named and left out: still d1 and d6, never r3's d4, d5.
    assert _total(rep, own + "&rep=r3") == 2
    assert "rep &#39;r3&#39; is not among those you may see" in rep.get(own + "&rep=r3").text
    # The download has every row, as a file.
    response = head.get(href + "&export=rows&format=csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(lines) == 1 + 5
    assert head.get("/rows?kpi=nope").status_code == 404


# -- every word in the reader's language ---------------------------------------------------
# Words a Russian or Ukrainian page may keep in Latin letters: names of formats and
# codes, the product's name, acronyms of KPIs, and what the catalogue's descriptions
# quote from the data (activity types, a source, a forecast category). Everything in
# snake_case is a column's or a KPI's key, and "--period month" an option of the CLI.
LATIN_ALLOWED = {"csv", "xlsx", "pdf", "yaml", "usd", "utc", "kpi", "saleskpi", "p90", "id", "cac",
                 "clv", "ltv", "p10", "p50", "crm"}
# Values of the data that the catalogue's descriptions quote (only on /catalog: the
# funnel's "proposal" stage, say, must be translated).
CATALOGUE_QUOTES = {"presentation", "demo", "referral", "commit", "email", "mail", "false",
                    "marketing", "sales", "proposal", "selling"}
# The data's own words: the fixture's reps and teams, and the canonical files a
# missing-data note names ("needs data: leads").
DATA_WORDS = {w.lower() for w in re.findall(r"[A-Za-z]+", " ".join(
    [*(line.split(",")[1] for line in REPS.strip().splitlines()[1:]), "North", "South",
     "script", "alert", *ENTITIES]))}
# Words a page may show as they are: names of products (Telegram, Slack, Microsoft Teams,
# a key on a Mac) and the example values in placeholders that a user types literally
# (a rule's name, rep ids, KPI keys, an address), or a file of the docs it points to.
PAGE_WORDS = {
    "/alerts": {"lead", "sla", "r1", "r2", "anna", "web", "docs", "alerts", "md"},
    "/contests": {"ctrl", "mac", "calls", "meetings"},
    "/notifications": {"telegram", "slack", "microsoft", "teams", "userinfobot", "start",
                       "anna", "example", "com", "mail"},
}
CHECKED_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt", "data-confirm")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class _Words(HTMLParser):
    """The text a reader sees (and the attributes read aloud), outside translate="no"."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []  # (tag, text inside is the user's own)
        self.text: list[str] = []

    @property
    def verbatim(self) -> bool:
        return any(skip for _tag, skip in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        skip = found.get("translate") == "no" or tag in ("script", "style")
        if not (self.verbatim or skip):
            self.text += [found[a] or "" for a in CHECKED_ATTRIBUTES if a in found]
        if tag not in VOID:
            self.stack.append((tag, skip))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.verbatim:
            self.text.append(data)


def untranslated(html: str, allowed: set[str] = LATIN_ALLOWED) -> set[str]:
    """Latin words (of 2 letters or more) of a page that should be all Cyrillic."""
    parser = _Words()
    parser.feed(html)
    text = re.sub(r"--[a-z-]+ [a-z]+", " ", " ".join(parser.text))
    words = re.findall(r"[A-Za-z][A-Za-z0-9_]+", text)
    return {w for w in words if "_" not in w and w.lower() not in allowed
            and w.lower() not in DATA_WORDS}


def test_the_check_catches_an_english_word() -> None:
    assert untranslated('<h1>Обзор</h1><p title="Previous">Период: <b>last</b></p>') == {
        "Previous", "last"}
    # The user's own words (a rep's name) are not ours to translate.
    assert untranslated('<td translate="no">Kim <b>West</b></td><p>Всего</p>') == set()
    assert untranslated("<p>Лиды: нужны данные: leads; deal_id</p>") == set()
    assert untranslated("<p>Лиды за период: won</p>") == {"won"}


RUSSIAN_PAGES = ["/", "/?period=month&from=2024-01-01&to=2024-03-31", "/funnel", "/compare",
                 "/leaderboard", "/leaderboard?period=month&from=2024-01-01&to=2024-03-31",
                 "/catalog", "/targets", "/import", "/reps/r1", "/reps/r3", "/logout",
                 "/rows?kpi=deals_won", "/rows?kpi=win_rate&part=denominator",
                 "/reps/nobody", "/forecast", "/targets/grid", "/alerts", "/contests",
                 "/bonus", "/notifications", "/deliveries"]
UKRAINIAN_PAGES = ["/", "/funnel", "/compare", "/leaderboard", "/catalog", "/reps/r3",
                   "/rows?kpi=calls", "/targets", "/forecast", "/targets/grid", "/alerts",
                   "/contests", "/bonus", "/notifications", "/deliveries"]


@pytest.mark.parametrize(("username", "path"), [("w_ru", p) for p in RUSSIAN_PAGES] +
                         [("w_uk", p) for p in UKRAINIAN_PAGES])
def test_no_english_word_on_a_russian_or_ukrainian_page(clients: dict[str, TestClient],
                                                        username: str, path: str) -> None:
    html = clients[username].get(path).text
    allowed = LATIN_ALLOWED | (CATALOGUE_QUOTES if path.startswith("/catalog") else set())
    allowed |= PAGE_WORDS.get(path, set())
    assert sorted(untranslated(html, allowed)) == [], path


@pytest.mark.parametrize("lang", ["ru", "uk"])
def test_the_sign_in_page_is_translated(app: Any, lang: str) -> None:
    visitor = TestClient(app)
    visitor.get(f"/language/{lang}")
    assert untranslated(visitor.get("/login").text) == set()


# -- a form for custom KPIs ------------------------------------------------------------------
def test_a_kpi_is_built_with_the_form_previewed_then_saved(clients: dict[str, TestClient],
                                                           settings: Settings) -> None:
    head = clients["w_head"]
    fields = {"csrf": _csrf(head), "key": "won_per_meeting", "name_en": "Won per meeting",
              "name_ru": "Выигрыши на встречу", "numerator": "deals_won",
              "denominator": "meetings", "unit": "number", "group": "funnel", "higher": "1"}
    preview = head.post("/catalog/build?range=all", data={**fields, "action": "preview"})
    assert preview.status_code == 200
    # All time, everyone: 5 deals won / 13 meetings (6 + 5 + 2).
    assert re.search(r"data-preview[^>]*>Preview: 0\.4 \(5\.00 / 13\.00\)", preview.text), (
        re.findall(r"data-preview[^<]*", preview.text))
    assert "won_per_meeting" not in read(head.get("/catalog").text).cells.__repr__()
    saved = head.post("/catalog/build", data={**fields, "action": "save"},
                      follow_redirects=False)
    assert saved.status_code == 303
    try:
        api = head.get("/api/v1/scorecard", params={"kpi": "won_per_meeting",
                                                  "range": "all"}).json()
        assert api["rows"][0]["won_per_meeting"]["value"] == pytest.approx(5 / 13, abs=1e-6)
        russian = clients["w_ru"].get("/catalog").text
        assert "Выигрыши на встречу" in russian
        bad = head.post("/catalog/build", data={**fields, "key": "x1", "numerator": "nope",
                                                "action": "save"})
        assert bad.status_code == 400
        assert clients["w_lead"].post("/catalog/build", data={**fields, "action": "save"},
                                      follow_redirects=False).status_code == 403
    finally:
        head.post("/catalog/delete", data={"csrf": _csrf(head), "key": "won_per_meeting"})
