"""A synthetic but realistic sales company, as canonical data frames.

``generate_company`` builds one DataFrame per entity of the data contract
(``saleskpi.domain.schema``): reps in teams, leads, deals with stage history,
activities, customers, revenue, spend, forecasts and targets. Reps differ in a
hidden skill that drives their call volume, call-to-meeting conversion, win
rate and lead response time, so a scorecard shows leaders and laggards.

Everything is vectorised with numpy (loops only per rep, team or month): at
``size=170`` it gives about 1M leads and 10M activities.

Times are built in a "working-seconds" clock (10 working hours a day, Monday
to Friday, in the company's local time): durations drawn in that clock land in
working hours by construction and keep their order. They are converted to
local wall time, then to naive UTC, at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from saleskpi.domain.schema import ENTITIES, ColumnType

Arr = npt.NDArray[Any]
Rng = np.random.Generator

DAY = 86_400
HOUR = 3_600
WORK_START = 9 * HOUR  # local working day: 09:00-19:00, Monday to Friday
WD = 10 * HOUR  # one working day in working seconds
WEEK = 5 * WD
NEVER = np.int64(2**62)

SOURCES = np.array(["website", "ads", "cold_call", "referral", "partner", "exhibition"], object)
WEBSITE, ADS, COLD_CALL, REFERRAL, PARTNER, EXHIBITION = range(6)
SOURCE_SHARE = np.array([0.31, 0.23, 0.16, 0.12, 0.10, 0.08])
SOURCE_B2B = np.array([0.50, 0.40, 0.70, 0.75, 0.80, 0.85])
SOURCE_TO_DEAL = np.array([1.0, 0.8, 0.7, 1.6, 1.3, 1.1])
SOURCE_TO_WIN = np.array([1.0, 0.9, 0.8, 1.4, 1.2, 1.0])
UTM = np.array(
    [None, "seo_blog", "newsletter", "brand_search", "competitor_search", "retargeting",
     "lookalike_b2b", "spring_promo"],
    object,
)

# Activity types; the index is the code used while generating.
TYPES = np.array(
    ["call", "email", "meeting", "proposal", "presentation", "demo", "note", "task",
     "internal_meeting", "report"],
    object,
)
CALL, EMAIL, MEETING, PROPOSAL, PRESENTATION, DEMO, NOTE, TASK, INTERNAL, REPORT = range(10)
LEAD_PHASE_MIX = np.array([0.66, 0.23, 0.0, 0.0, 0.0, 0.0, 0.06, 0.05])
DEAL_PHASE_MIX = np.array([0.46, 0.27, 0.0, 0.0, 0.045, 0.045, 0.10, 0.08])
DIRECTIONS = np.array([None, "in", "out"], object)
NO_DIR, IN, OUT = range(3)
OUTCOMES = np.array(
    [None, "connected", "no_answer", "busy", "voicemail", "sent", "received", "held",
     "no_show", "done"],
    object,
)

STAGES = np.array(["new", "qualified", "proposal", "negotiation", "won", "lost"], object)
PIPELINES = np.array(["main", "partners"], object)
STAGE_DAYS = np.array([[1.0, 3.0, 4.0, 3.0], [1.5, 4.0, 5.0, 0.0]])  # working days per stage
LOST_AT_STAGE = np.array([[0.3, 0.3, 0.25, 0.15], [0.35, 0.35, 0.30, 0.0]])
STAGE_PROBABILITY = np.array([0.10, 0.25, 0.45, 0.65])
DEAL_LOST_REASONS = np.array(
    ["price", "competitor", "no_budget", "no_decision", "timing", "no_response"], object
)
LEAD_LOST_REASONS = np.array(
    ["no_response", "not_a_fit", "no_budget", "duplicate", "competitor", "bad_contact"], object
)
SECTORS = np.array(
    ["retail", "manufacturing", "it", "logistics", "healthcare", "construction", "education",
     "finance"],
    object,
)

# id, name, category, price and unit cost in USD, share among b2b and b2c deals
PRODUCTS: tuple[tuple[str, str, str, float, float, float, float], ...] = (
    ("P01", "Start subscription", "software", 1200.0, 240.0, 0.22, 0.55),
    ("P02", "Business subscription", "software", 4800.0, 900.0, 0.30, 0.20),
    ("P03", "Enterprise subscription", "software", 18000.0, 3200.0, 0.13, 0.0),
    ("P04", "Implementation", "services", 3500.0, 2100.0, 0.17, 0.05),
    ("P05", "Training day", "services", 900.0, 450.0, 0.10, 0.12),
    ("P06", "Headset kit", "hardware", 180.0, 110.0, 0.08, 0.08),
)
HEADSETS = 5
USD_RATE = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "UAH": 41.0, "RUB": 90.0, "PLN": 4.0,
            "KZT": 500.0, "CHF": 0.88}

# Locales: 0 Russian, 1 Ukrainian, 2 English. Teams take a city of their locale.
CITIES = (
    ("Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург", "Казань", "Нижний Новгород"),
    ("Київ", "Львів", "Одеса", "Харків", "Дніпро", "Запоріжжя"),
    ("London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Bristol"),
)
_RU_MALE = ("Алексей", "Дмитрий", "Сергей", "Михаил", "Иван", "Николай", "Артём", "Павел",
            "Владимир", "Егор")
_RU_FEMALE = ("Анна", "Екатерина", "Мария", "Ольга", "Татьяна", "Наталья", "Юлия", "Светлана",
              "Ирина", "Ксения")
_RU_SURNAMES = ("Смирнов", "Иванов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Козлов",
                "Новиков", "Морозов", "Волков")
_UK_FIRST = ("Олена", "Андрій", "Оксана", "Тарас", "Ірина", "Богдан", "Наталія", "Юрій", "Дмитро",
             "Галина", "Максим", "Софія", "Олександр", "Марія")
_UK_SURNAMES = ("Коваленко", "Шевченко", "Бондаренко", "Ткаченко", "Кравченко", "Мельник",
                "Олійник", "Шевчук", "Бойко", "Павленко", "Савченко", "Руденко", "Гончаренко",
                "Лисенко")
_EN_FIRST = ("James", "Emily", "Oliver", "Sophie", "Harry", "Charlotte", "George", "Amelia",
             "Jack", "Olivia", "Thomas", "Grace")
_EN_SURNAMES = ("Smith", "Clarke", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas",
                "Johnson", "Walker", "Wright", "Robinson")
_COMPANY_WORDS = (
    ("Вектор", "Горизонт", "Альянс", "Сфера", "Меридиан", "Импульс", "Гранит", "Восход",
     "Стандарт", "Прогресс", "Орбита", "Север"),
    ("Світанок", "Обрій", "Вектор", "Злагода", "Джерело", "Калина", "Поділля", "Весна", "Сокіл",
     "Дніпро", "Карпати", "Полісся"),
    ("Northwind", "Bluebird", "Redwood", "Silverline", "Brightpath", "Oakridge", "Greenfield",
     "Ironbridge", "Harbour", "Summit", "Kingsway", "Riverside"),
)
_COMPANY_SUFFIXES = (
    ("Строй", "Торг", "Трейд", "Сервис", "Логистик", "Агро", "Тех", "Групп"),
    ("Буд", "Торг", "Трейд", "Сервіс", "Логістик", "Агро", "Тех", "Груп"),
    ("Logistics", "Foods", "Systems", "Retail", "Partners", "Industries", "Tech", "Group"),
)
_LEGAL_FORMS = (("ООО", "АО"), ("ТОВ", "ПП"), ("Ltd", "LLP"))
_TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяієїґ",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r",
     "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya", "i", "ie",
     "i", "g"],
    strict=True,
))
_UK_TRANSLIT = {"г": "h", "и": "y", "й": "i"}
EMAIL_DOMAIN = "demo-sales.example"

_DIGITS = np.frombuffer(b"".join(b"%04d" % i for i in range(10_000)), np.uint8).reshape(-1, 4)


# --------------------------------------------------------------------------- time


def _to_work(local: Arr) -> Arr:
    """Local wall-clock seconds -> working seconds (non-decreasing, continuous)."""
    day = local // DAY
    sec = local - day * DAY
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    week = (day + 3) // 7
    inside = np.clip(sec - WORK_START, 0, WD)
    return week * WEEK + np.where(weekday < 5, weekday * WD + inside, 5 * WD)


def _from_work(work: Arr) -> Arr:
    """Working seconds -> local wall-clock seconds, always within working hours."""
    week = work // WEEK
    rest = work - week * WEEK
    weekday = rest // WD
    local: Arr = (week * 7 - 3 + weekday) * DAY + WORK_START + (rest - weekday * WD)
    return local


def _day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


@dataclass
class _Calendar:
    """The covered period in local days, the cut-off, and local -> UTC offsets."""

    start_day: int
    end_day: int  # `end` itself: nothing happens from its local midnight on
    cutoff_local: int
    cutoff_utc: int
    first_offset_day: int
    offsets: Arr  # UTC offset in seconds of each local day, at noon

    @classmethod
    def build(cls, end: dt.date, months: int, timezone: str) -> _Calendar:
        start = (pd.Timestamp(end) - pd.DateOffset(months=months)).date()
        start_day, end_day = _day_number(start), _day_number(end)
        first, last = start_day - 60, end_day + 800
        noon = pd.DatetimeIndex(
            (np.arange(first, last + 1) * DAY + 12 * HOUR).astype("datetime64[s]")
        )
        utc = noon.tz_localize(timezone, nonexistent="shift_forward").tz_convert("UTC")
        offsets = noon.as_unit("s").asi8 - utc.tz_localize(None).as_unit("s").asi8
        midnight = pd.Timestamp(end).tz_localize(timezone, nonexistent="shift_forward")
        cutoff = min(midnight.tz_convert("UTC").tz_localize(None), pd.Timestamp(end))
        cutoff_utc = cutoff.value // 10**9
        cutoff_local = cutoff.tz_localize("UTC").tz_convert(timezone).tz_localize(None).value
        cutoff_local //= 10**9
        return cls(start_day, end_day, cutoff_local, cutoff_utc, first, offsets)

    @property
    def wc(self) -> int:
        """The cut-off in working seconds: events must be strictly before it."""
        return int(_to_work(np.array([self.cutoff_local]))[0])

    def to_utc(self, local: Arr) -> Arr:
        index = np.clip(local // DAY - self.first_offset_day, 0, len(self.offsets) - 1)
        utc: Arr = local - self.offsets[index]
        return utc

    def work_to_utc(self, work: Arr) -> Arr:
        return self.to_utc(_from_work(work))


def _month_index(local: Arr) -> Arr:
    """Months since 1970-01 of local seconds."""
    return local.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)


# --------------------------------------------------------------------------- helpers


def _ids(prefix: str, n: int, width: int) -> Arr:
    """``prefix`` + zero-padded 1..n as Python strings, built without a Python loop per id."""
    width = max(width, len(str(n)))
    pre = np.frombuffer(prefix.encode(), np.uint8)
    chars = len(pre) + width
    out = np.empty(n, object)
    step = 1 << 20  # in chunks, to keep the fixed-width intermediates small
    for lo in range(0, n, step):
        num = np.arange(lo + 1, min(lo + step, n) + 1, dtype=np.int64)
        digits = np.empty((len(num), 4 * -(-width // 4)), np.uint8)
        for stop in range(digits.shape[1], 0, -4):
            digits[:, stop - 4 : stop] = _DIGITS[num % 10_000]
            num //= 10_000
        text = np.empty((len(num), chars), np.uint8)
        text[:, : len(pre)] = pre
        text[:, len(pre) :] = digits[:, -width:]
        out[lo : lo + len(num)] = text.view(f"S{chars}").ravel().astype(f"U{chars}")
    return out


def _with_none(values: Arr) -> Arr:
    """Object array with a trailing None, so index -1 means 'missing'."""
    out = np.empty(len(values) + 1, object)
    out[:-1] = values
    out[-1] = None
    return out


def _lognormal(rng: Rng, median: Arr | float, sigma: float, n: int) -> Arr:
    return np.asarray(median) * np.exp(sigma * rng.standard_normal(n))


def _uniform_between(rng: Rng, lo: Arr, hi: Arr) -> Arr:
    span = np.maximum(hi - lo, 1)
    out: Arr = lo + (rng.random(len(lo)) * span).astype(np.int64)
    return out


def _transliterate(text: str, locale: int) -> str:
    table = {**_TRANSLIT, **_UK_TRANSLIT} if locale == 1 else _TRANSLIT
    return "".join(table.get(ch, ch) for ch in text.lower())


def _timestamps(utc_seconds: Arr, missing: Arr | None = None) -> Arr:
    out = (utc_seconds.astype(np.int64) * 1_000_000).astype("datetime64[us]")
    if missing is not None:
        out[missing] = np.datetime64("NaT")
    return out


def _dates(day_numbers: Arr) -> Arr:
    out = (day_numbers.astype(np.int64) * DAY * 1_000_000).astype("datetime64[us]")
    out[day_numbers < 0] = np.datetime64("NaT")
    return out


def _frame(name: str, columns: dict[str, Any], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """A frame with exactly the entity's columns, in order, with the contract's dtypes."""
    data: dict[str, pd.Series[Any]] = {}
    for col in ENTITIES[name].columns:
        value = columns[col.name]
        if col.type is ColumnType.TEXT:
            data[col.name] = pd.Series(value, dtype=object, copy=False)
        elif col.type in (ColumnType.TIMESTAMP, ColumnType.DATE):
            data[col.name] = pd.Series(np.asarray(value, "datetime64[us]"), copy=False)
        elif col.type is ColumnType.MONEY:
            data[col.name] = pd.Series(np.round(np.asarray(value, np.float64), 2), copy=False)
        elif col.type is ColumnType.NUMBER:
            data[col.name] = pd.Series(np.asarray(value, np.float64), copy=False)
        elif col.type is ColumnType.INTEGER:
            data[col.name] = pd.Series(value, dtype="Int64", copy=False)
        else:
            data[col.name] = pd.Series(value, dtype="boolean", copy=False)
    for col_name in extra:
        data[col_name] = pd.Series(columns[col_name], dtype=object, copy=False)
    return pd.DataFrame(data, copy=False)


# --------------------------------------------------------------------------- reps


@dataclass
class _Reps:
    ids: Arr
    names: Arr
    emails: Arr
    team: Arr  # team index, -1 for the head of sales
    team_names: list[str]
    team_locale: Arr
    role: Arr
    manager: Arr  # index, -1 for none
    hired_day: Arr
    left_day: Arr  # -1 for still employed
    skill: Arr
    lead_weight: Arr  # 0 for the head
    team_lead: Arr  # team lead of each rep's team (self for team leads, -1 for the head)
    left_work: Arr  # left_at in working seconds, NEVER if still employed

    @property
    def sellers(self) -> Arr:
        return np.flatnonzero(self.lead_weight > 0)

    def owner(self, rep: Arr, work: Arr) -> Arr:
        """Who holds a rep's leads and deals at a moment: after a rep left, the team lead."""
        return np.where(work >= self.left_work[rep], self.team_lead[rep], rep)


def _name_pool(rng: Rng, locale: int) -> list[tuple[str, str]]:
    """Unique first name + surname pairs; neighbours share neither part."""
    if locale == 0:
        firsts = [(f, "") for f in _RU_MALE] + [(f, "а") for f in _RU_FEMALE]
        surnames: tuple[str, ...] = _RU_SURNAMES
        head = [("Алексей", "Смирнов"), ("Анна", "Морозова")]
    elif locale == 1:
        firsts, surnames = [(f, "") for f in _UK_FIRST], _UK_SURNAMES
        head = [("Олена", "Коваленко"), ("Андрій", "Шевченко")]
    else:
        firsts, surnames = [(f, "") for f in _EN_FIRST], _EN_SURNAMES
        head = [("James", "Smith"), ("Emily", "Clarke")]
    firsts = [firsts[i] for i in rng.permutation(len(firsts))]
    surnames = tuple(surnames[i] for i in rng.permutation(len(surnames)))
    nf, ns = len(firsts), len(surnames)
    pool = [
        (firsts[k % nf][0], surnames[(k + k // nf) % ns] + firsts[k % nf][1])
        for k in range(nf * ns)
    ]
    return head + [p for p in pool if p not in head]


def _make_reps(rng: Rng, size: float, cal: _Calendar) -> _Reps:
    n = max(4, round(20 * np.sqrt(size)))
    sellers = n - 1  # rep 0 is the head of sales
    n_teams = max(1, min(sellers // 2, round(sellers / 6.5)))
    team = np.concatenate([[-1], np.sort(np.arange(sellers) % n_teams)])
    team_names = []
    for t in range(n_teams):
        cities = CITIES[t % 3]
        k = t // 3
        suffix = f" {k // len(cities) + 1}" if k >= len(cities) else ""
        team_names.append(cities[k % len(cities)] + suffix)
    team_locale = np.arange(n_teams) % 3
    is_lead = np.zeros(n, bool)
    is_lead[1 + np.searchsorted(team[1:], np.arange(n_teams))] = True
    team_lead_of_team = np.flatnonzero(is_lead)
    team_lead = np.where(team >= 0, team_lead_of_team[np.maximum(team, 0)], -1)
    role = np.where(is_lead, "team_lead", "rep").astype(object)
    role[0] = "head"
    manager = np.where(is_lead, 0, team_lead)
    manager[0] = -1

    # Names: mostly the team's language, some colleagues from elsewhere.
    locale = np.where(rng.random(n) < 0.75, team_locale[np.maximum(team, 0)], rng.integers(0, 3, n))
    locale[0] = 1
    pools = [_name_pool(rng, loc) for loc in range(3)]
    used = [0, 0, 0]
    names, emails, seen = [], [], set()
    for loc in locale:  # per rep
        pool = pools[loc]
        first, last = pool[used[loc] % len(pool)]
        round_no = used[loc] // len(pool)
        used[loc] += 1
        names.append(f"{first} {last}" + (f" {round_no + 1}" if round_no else ""))
        base = f"{_transliterate(first, loc)}.{_transliterate(last, loc)}"
        email, k = base, 1
        while email in seen:
            k += 1
            email = f"{base}{k}"
        seen.add(email)
        emails.append(f"{email}@{EMAIL_DOMAIN}")

    span = cal.end_day - cal.start_day
    hired = cal.start_day - rng.integers(120, 5 * 365, n)
    hired[is_lead] = cal.start_day - rng.integers(2 * 365, 6 * 365, int(is_lead.sum()))
    hired[0] = cal.start_day - 7 * 365
    left = np.full(n, -1, np.int64)
    regular = np.flatnonzero(role == "rep")
    if len(regular) >= 3:
        n_new = max(1, round(0.1 * len(regular)))
        n_left = max(1, round(0.05 * len(regular)))
        chosen = rng.permutation(regular)
        new, gone = chosen[:n_new], chosen[n_new : n_new + n_left]
        hired[new] = cal.start_day + (span * rng.uniform(0.25, 0.6, len(new))).astype(np.int64)
        left[gone] = cal.start_day + (span * rng.uniform(0.5, 0.85, len(gone))).astype(np.int64)

    skill = np.clip(np.exp(0.3 * rng.standard_normal(n)), 0.5, 1.8)
    skill[is_lead] *= 1.1
    lead_weight = np.where(is_lead, 0.6, 1.0) * rng.uniform(0.8, 1.2, n)
    lead_weight[0] = 0.0
    left_work = np.where(left >= 0, _to_work(np.maximum(left, 0) * DAY), NEVER)
    return _Reps(
        ids=_ids("R", n, 3), names=np.array(names, object), emails=np.array(emails, object),
        team=team, team_names=team_names, team_locale=team_locale, role=role, manager=manager,
        hired_day=hired, left_day=left, skill=skill, lead_weight=lead_weight,
        team_lead=team_lead, left_work=left_work,
    )


# --------------------------------------------------------------------------- leads


@dataclass
class _Leads:
    created: Arr  # local seconds
    created_work: Arr
    source: Arr
    b2b: Arr
    utm: Arr
    rep: Arr
    first_contact: Arr  # working seconds
    contacted: Arr
    never: Arr  # never contacted at all
    wants_deal: Arr
    deal_at: Arr  # working seconds when the lead becomes a deal
    nurture_end: Arr  # working seconds when a lead without a deal is given up


def _lead_count(size: float, months: int) -> int:
    """About 6,000 leads a year per unit of size."""
    return max(20, round(6000 * size * months / 12))


def _make_leads(rng: Rng, n: int, cal: _Calendar, reps: _Reps) -> _Leads:
    source = rng.choice(len(SOURCES), n, p=SOURCE_SHARE)
    days = np.arange(cal.start_day, cal.end_day)
    weekday = (days + 3) % 7
    trend = 0.85 + 0.3 * (days - cal.start_day) / len(days)
    monthly = np.exp(0.1 * rng.standard_normal((len(days) + 29) // 30 + 1))
    weight = np.where(weekday < 5, 1.0, 0.3) * trend * monthly[(days - cal.start_day) // 30]
    day = rng.choice(days, n, p=weight / weight.sum())
    in_hours = rng.random(n) < 0.8
    tod = np.where(in_hours, WORK_START + rng.random(n) * WD, rng.random(n) * DAY).astype(np.int64)
    # Exhibition leads arrive on a few fair days spread over the period.
    fairs = cal.start_day + (np.linspace(0.15, 0.85, max(1, round(len(days) / 120)))
                             * len(days)).astype(np.int64)
    fairs += (1 - (fairs + 3) % 7) % 7  # the next Tuesday
    fairs = np.clip(fairs, cal.start_day, cal.end_day - 3)
    ex = source == EXHIBITION
    day[ex] = fairs[rng.integers(0, len(fairs), int(ex.sum()))] + rng.integers(0, 2, int(ex.sum()))
    tod[ex] = 10 * HOUR + rng.integers(0, 8 * HOUR, int(ex.sum()))
    created = day * DAY + tod
    late = created >= cal.cutoff_local
    created[late] = cal.cutoff_local - rng.integers(60, 2 * HOUR, int(late.sum()))
    order = np.argsort(created, kind="stable")
    created, source = created[order], source[order]

    b2b = rng.random(n) < SOURCE_B2B[source]
    utm = np.zeros(n, np.int64)
    web, ads = source == WEBSITE, source == ADS
    utm[web] = rng.choice(3, int(web.sum()), p=[0.5, 0.3, 0.2])
    utm[ads] = rng.integers(3, len(UTM), int(ads.sum()))

    sellers = reps.sellers
    w = reps.lead_weight[sellers]
    rep = sellers[rng.choice(len(sellers), n, p=w / w.sum())]
    always = sellers[(reps.hired_day[sellers] < cal.start_day) & (reps.left_day[sellers] < 0)]
    for r in sellers[~np.isin(sellers, always)]:  # per rep: new hires and leavers
        lo = (reps.hired_day[r] + 5) * DAY
        hi = (reps.left_day[r] - 14) * DAY if reps.left_day[r] >= 0 else NEVER
        bad = (rep == r) & ((created < lo) | (created >= hi))
        pool = always[reps.team[always] == reps.team[r]]
        pool = pool if len(pool) else always
        rep[bad] = pool[rng.integers(0, len(pool), int(bad.sum()))]

    # Lead response: log-normal in working time; fast reps answer within 5 min
    # far more often than slow ones.
    sigma = 1.7
    p5 = np.clip(0.36 + 0.45 * (reps.skill - 1.0), 0.05, 0.55)
    mu = np.log(300.0) - sigma * np.array([NormalDist().inv_cdf(p) for p in p5])
    response = np.clip(np.exp(mu[rep] + sigma * rng.standard_normal(n)), 20, 20 * WD)
    created_work = _to_work(created)
    first_contact = created_work + response.astype(np.int64)
    never = rng.random(n) < 0.03
    contacted = ~never & (first_contact < cal.wc)

    p_deal = SOURCE_TO_DEAL[source] * reps.skill[rep] ** 0.6
    p_deal = np.clip(p_deal * 0.33 / p_deal[contacted].mean(), 0, 0.95)
    wants_deal = contacted & (rng.random(n) < p_deal)
    deal_at = first_contact + np.clip(_lognormal(rng, 0.6 * WD, 1.0, n), 300, 30 * WD).astype(
        np.int64
    )
    nurture_end = first_contact + np.clip(_lognormal(rng, 5 * WD, 0.8, n), WD, 60 * WD).astype(
        np.int64
    )
    return _Leads(created, created_work, source, b2b, utm, rep, first_contact, contacted, never,
                  wants_deal, deal_at, nurture_end)


# --------------------------------------------------------------------------- deals


@dataclass
class _Deals:
    lead: Arr
    pipeline: Arr
    entered: Arr  # (n, 4) working seconds of each stage's entry (planned)
    reached: Arr  # stages reached before the outcome (planned)
    won: Arr  # planned outcome
    close: Arr  # planned close, working seconds
    closed: Arr  # closed before the cut-off
    recorded: Arr  # (n, 4) stage entered before the cut-off
    owner: Arr
    product: Arr
    quantity: Arr
    amount: Arr
    expected_close: Arr


def _make_deals(rng: Rng, cal: _Calendar, reps: _Reps, leads: _Leads, price: Arr) -> _Deals:
    wc = cal.wc
    lead = np.flatnonzero(leads.wants_deal & (leads.deal_at < wc))
    lead = lead[np.argsort(leads.deal_at[lead], kind="stable")]
    n = len(lead)
    rep, b2b, source = leads.rep[lead], leads.b2b[lead], leads.source[lead]
    pipeline = ((source == PARTNER) & (rng.random(n) < 0.7)).astype(np.int64)
    n_stages = np.where(pipeline == 1, 3, 4)
    segment = np.where(b2b, 2.2, 0.6)
    days = STAGE_DAYS[pipeline] * segment[:, None] * np.exp(0.7 * rng.standard_normal((n, 4)))
    stalled = np.flatnonzero(rng.random(n) < 0.1)  # deals that get stuck in one stage
    days[stalled, rng.integers(0, 3, len(stalled))] *= 6
    duration = np.maximum(days * WD, 600).astype(np.int64)
    entered = np.empty((n, 4), np.int64)
    entered[:, 0] = leads.deal_at[lead]
    for i in range(1, 4):
        entered[:, i] = entered[:, i - 1] + duration[:, i - 1]
    p_win = 0.34 * reps.skill[rep] ** 1.2 * SOURCE_TO_WIN[source] * np.where(b2b, 0.92, 1.15)
    won = rng.random(n) < np.clip(p_win, 0.03, 0.9)
    lost_cdf = np.cumsum(LOST_AT_STAGE[pipeline], axis=1)
    lost_stage = np.minimum((rng.random(n)[:, None] > lost_cdf).sum(axis=1), n_stages - 1)
    reached = np.where(won, n_stages, lost_stage + 1)
    last = reached - 1
    rows = np.arange(n)
    close = entered[rows, last] + duration[rows, last]
    closed = close < wc
    recorded = (np.arange(4)[None, :] < reached[:, None]) & (entered < wc)
    owner = reps.owner(rep, np.where(closed, close, wc))

    share = np.array([[p[5], p[6]] for p in PRODUCTS])
    product = np.where(
        b2b,
        rng.choice(len(PRODUCTS), n, p=share[:, 0]),
        rng.choice(len(PRODUCTS), n, p=share[:, 1] / share[:, 1].sum()),
    )
    quantity = np.where(b2b, np.minimum(rng.geometric(0.45, n), 20), 1)
    quantity = np.where(product == HEADSETS, quantity * np.where(b2b, 5, rng.integers(1, 3, n)),
                        quantity).astype(np.float64)
    discount = rng.uniform(0, np.where(b2b, 0.15, 0.05))
    amount = np.round(price[product] * quantity * (1 - discount), 2)
    planned = (STAGE_DAYS[pipeline] * segment[:, None]).sum(axis=1) * WD
    expected = entered[:, 0] + (planned * rng.uniform(0.8, 1.3, n)).astype(np.int64)
    return _Deals(lead, pipeline, entered, reached, won, close, closed, recorded, owner, product,
                  quantity, amount, expected)


# --------------------------------------------------------------------------- activities


@dataclass
class _Activities:
    local: Arr
    type: Arr
    rep: Arr
    lead: Arr
    deal: Arr
    account: Arr
    direction: Arr


def _spread(rng: Rng, counts: Arr, lo: Arr, hi: Arr) -> tuple[Arr, Arr]:
    """For each owner i, counts[i] times uniform in [lo[i], hi[i]]: (owner index, time)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    return owner, _uniform_between(rng, lo[owner], hi[owner])


def _make_activities(
    rng: Rng, cal: _Calendar, reps: _Reps, leads: _Leads, deals: _Deals,
    acquired: Arr, active_until: Arr, deal_account: Arr,
) -> _Activities:
    wc = cal.wc
    mult = np.clip(reps.skill, 0.5, 1.8) ** 0.7
    meet_skill = reps.skill**1.3
    work: list[Arr] = []
    typ: list[Arr] = []
    rep: list[Arr] = []
    lead: list[Arr] = []
    deal: list[Arr] = []
    acct: list[Arr] = []
    direction: list[Arr] = []

    def add(w: Arr, t: Arr, r: Arr, ld: Arr | int, dl: Arr | int, ac: Arr | int, d: Arr) -> None:
        keep = w < wc
        n = int(keep.sum())
        work.append(w[keep])
        typ.append(t[keep].astype(np.int8))
        rep.append(r[keep].astype(np.int32))
        for target, value in ((lead, ld), (deal, dl), (acct, ac)):
            arr = np.full(n, value, np.int32) if isinstance(value, int) else value[keep]
            target.append(arr.astype(np.int32))
        direction.append(d[keep].astype(np.int8))

    # First contact: an outbound call or email, after the lead arrived.
    first = np.flatnonzero(leads.contacted)
    n = len(first)
    add(leads.first_contact[first], np.where(rng.random(n) < 0.7, CALL, EMAIL),
        leads.rep[first], first, -1, -1, np.full(n, OUT))

    # Further touches on the lead before it becomes a deal (or is given up).
    bound = leads.wants_deal[first]
    until = np.where(bound, leads.deal_at[first], leads.nurture_end[first])
    lam = np.where(bound, 2.0, 7.2) * mult[leads.rep[first]]
    i, w = _spread(rng, rng.poisson(lam), leads.first_contact[first] + 60, until)
    li, r = first[i], leads.rep[first[i]]
    t = rng.choice(8, len(i), p=LEAD_PHASE_MIX)
    t[rng.random(len(i)) < 0.035 * meet_skill[r]] = MEETING
    add(w, t, r, li, -1, -1, _directions(rng, t))

    # Touches on deals, from creation to close.
    d_rep = leads.rep[deals.lead]
    lam = 3.6 * deals.reached * mult[d_rep]
    i, w = _spread(rng, rng.poisson(lam), deals.entered[:, 0] + 60, deals.close)
    r = d_rep[i]
    t = rng.choice(8, len(i), p=DEAL_PHASE_MIX)
    t[rng.random(len(i)) < 0.09 * meet_skill[r]] = MEETING
    add(w, t, r, deals.lead[i], i, deal_account[i], _directions(rng, t))
    # A qualification meeting and a sent proposal at their stages' entry.
    for stage, kind, share in ((1, MEETING, 0.75), (2, PROPOSAL, 1.0)):
        i = np.flatnonzero((deals.reached > stage) & (rng.random(len(deals.lead)) < share))
        w = deals.entered[i, stage] + rng.integers(60, 2 * HOUR, len(i))
        t = np.full(len(i), kind)
        add(w, t, d_rep[i], deals.lead[i], i, deal_account[i],
            np.full(len(i), OUT if kind == PROPOSAL else NO_DIR))

    # Account management after the sale.
    a_rep = deals.owner[deals.won & deals.closed]
    months_active = (active_until - acquired) / (21 * WD)
    i, w = _spread(rng, rng.poisson(0.3 * np.maximum(months_active, 0) * mult[a_rep]),
                   acquired + WD, active_until)
    t = rng.choice([CALL, EMAIL, MEETING], len(i), p=[0.5, 0.35, 0.15])
    add(w, t, a_rep[i], -1, -1, i, np.where(t == MEETING, NO_DIR, OUT))

    # Non-selling work: the Monday team meeting and the Friday report.
    sellers = reps.sellers
    weeks = np.arange(_to_work(np.array([cal.start_day * DAY]))[0] // WEEK, wc // WEEK + 1)
    for kind, at in ((INTERNAL, HOUR), (REPORT, 4 * WD + 8 * HOUR)):
        w = (weeks[None, :] * WEEK + at).repeat(len(sellers), axis=0)
        r = np.broadcast_to(sellers[:, None], w.shape)
        hired = _to_work(reps.hired_day[sellers] * DAY)[:, None]
        ok = (w >= hired) & (w < reps.left_work[sellers][:, None])
        ok &= (w >= _to_work(np.array([cal.start_day * DAY]))[0]) & (rng.random(w.shape) < 0.85)
        add(w[ok], np.full(int(ok.sum()), kind), r[ok], -1, -1, -1,
            np.full(int(ok.sum()), NO_DIR))

    all_work = np.concatenate(work)
    local = _from_work(all_work)
    all_type = np.concatenate(typ)
    # A few emails go out in the evening (never a first contact, which comes first).
    evening = np.flatnonzero((all_type == EMAIL) & (rng.random(len(all_type)) < 0.04))
    evening = evening[evening >= len(work[0])]
    local[evening] = (local[evening] // DAY) * DAY + 19 * HOUR + rng.integers(
        600, 3 * HOUR, len(evening)
    )
    work.clear()
    order = np.argsort(local, kind="stable")
    all_rep = np.concatenate(rep)[order]
    all_work = all_work[order]
    all_rep = reps.owner(all_rep, all_work)
    del all_work
    return _Activities(
        local=local[order], type=all_type[order], rep=all_rep,
        lead=np.concatenate(lead)[order], deal=np.concatenate(deal)[order],
        account=np.concatenate(acct)[order], direction=np.concatenate(direction)[order],
    )


def _directions(rng: Rng, types: Arr) -> Arr:
    u = rng.random(len(types))
    d = np.full(len(types), NO_DIR, np.int8)
    d[types == CALL] = np.where(u[types == CALL] < 0.1, IN, OUT)
    d[types == EMAIL] = np.where(u[types == EMAIL] < 0.3, IN, OUT)
    d[types == PROPOSAL] = OUT
    return d


def _outcomes_and_durations(rng: Rng, typ: Arr, direction: Arr) -> tuple[Arr, Arr, Arr]:
    n = len(typ)
    u = rng.random(n)
    outcome = np.zeros(n, np.int8)
    call = typ == CALL
    out_call = call & (direction == OUT)
    outcome[call] = 1  # connected
    outcome[out_call] = np.searchsorted(np.array([0.45, 0.78, 0.85]), u[out_call], side="right") + 1
    outcome[(typ == EMAIL) & (direction == OUT)] = 5
    outcome[(typ == EMAIL) & (direction == IN)] = 6
    outcome[typ == PROPOSAL] = 5
    held = (typ == MEETING) | (typ == PRESENTATION) | (typ == DEMO)
    outcome[held] = 7
    outcome[(typ == MEETING) & (u < 0.07)] = 8
    outcome[typ == TASK] = 9

    seconds = np.zeros(n, np.int64)
    has = np.zeros(n, bool)
    z = rng.standard_normal(n)
    connected = call & (outcome == 1)
    seconds[connected] = np.clip(200 * np.exp(0.8 * z[connected]), 20, 3600)
    short = call & ((outcome == 2) | (outcome == 3))
    seconds[short] = 5 + (u[short] * 35)
    voicemail = call & (outcome == 4)
    seconds[voicemail] = 20 + (u[voicemail] * 50)
    met = held & (outcome == 7)
    seconds[met] = np.clip(np.where(typ[met] == MEETING, 2700, 2400) * np.exp(0.35 * z[met]),
                           600, 3 * 3600)
    seconds[typ == INTERNAL] = 3600
    report = typ == REPORT
    seconds[report] = 1200 + u[report] * 2400
    has[call | met | (typ == INTERNAL) | report] = True
    return outcome, seconds, has


# --------------------------------------------------------------------------- company


def _text(values: Arr, index: Arr) -> Arr:
    return _with_none(values)[index]


def _account_names(rng: Rng, locale: Arr, b2b: Arr) -> Arr:
    n = len(locale)
    names = np.empty(n, object)
    for loc in range(3):  # per language
        words, suffixes, forms = _COMPANY_WORDS[loc], _COMPANY_SUFFIXES[loc], _LEGAL_FORMS[loc]
        if loc == 2:
            companies = [f"{w} {s} {f}" for w in words for s in suffixes for f in forms]
        else:
            companies = [f"{f} «{w}-{s}»" for w in words for s in suffixes for f in forms]
        people = [f"{f} {s}" for f, s in _name_pool(rng, loc)]
        table = np.array(companies + people, object)
        mine = locale == loc
        pick = np.where(b2b[mine], rng.integers(0, len(companies), int(mine.sum())),
                        len(companies) + rng.integers(0, len(people), int(mine.sum())))
        names[mine] = table[pick]
    return names


def generate_company(
    size: float = 1.0,
    *,
    seed: int = 42,
    end: dt.date,
    months: int = 12,
    timezone: str = "Europe/Kyiv",
    currency: str = "USD",
    progress: Callable[[str], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """A synthetic sales company: one DataFrame per canonical entity, deterministic per seed.

    ``size=1`` gives ~20 reps, ~6,000 leads a year and ~10 activities per lead
    over the ``months`` months before ``end``; leads scale with ``size`` (and
    ``months``), reps with the square root of ``size``. Timestamps are naive
    UTC; nothing happens on or after ``end`` (only open deals'
    ``expected_close_at`` may lie beyond it).
    """
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if months < 1:
        raise ValueError(f"months must be at least 1, got {months}")

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    rng = np.random.default_rng(seed)
    cal = _Calendar.build(end, months, timezone)
    wc = cal.wc
    rate = USD_RATE.get(currency.upper(), 1.0)
    price = np.array([p[3] for p in PRODUCTS]) * rate
    unit_cost = np.array([p[4] for p in PRODUCTS]) * rate

    say("reps")
    reps = _make_reps(rng, size, cal)
    n_leads = _lead_count(size, months)
    say(f"leads ({n_leads:,})")
    leads = _make_leads(rng, n_leads, cal, reps)
    say("deals and stage history")
    deals = _make_deals(rng, cal, reps, leads, price)
    n_deals = len(deals.lead)

    say("customers and revenue")
    won = np.flatnonzero(deals.won & deals.closed)
    won = won[np.argsort(deals.close[won], kind="stable")]
    n_acc = len(won)
    deal_account = np.full(n_deals, -1, np.int64)
    deal_account[won] = np.arange(n_acc)
    acquired = deals.close[won]
    acc_b2b = leads.b2b[deals.lead[won]]
    churn = acquired + (rng.exponential(90, n_acc) * WD).astype(np.int64)
    churned = (rng.random(n_acc) < np.where(acc_b2b, 0.10, 0.15)) & (churn < wc)
    active_until = np.where(churned, churn, wc)
    acc_rep = deals.owner[won]

    first_invoice = acquired + rng.integers(0, WD, n_acc)
    first_invoice = np.where(first_invoice < wc, first_invoice, acquired)
    repeat_months = np.maximum(active_until - acquired - 2 * WD, 0) / (21 * WD)
    repeat_count = rng.poisson(np.where(acc_b2b, 0.12, 0.05) * repeat_months)
    repeat_acc, repeat_at = _spread(rng, repeat_count, acquired + 2 * WD, active_until)
    n_repeat = len(repeat_acc)
    # Repeat purchases: mostly add-ons (training, headsets) and small upgrades.
    repeat_product = rng.choice(len(PRODUCTS), n_repeat, p=[0.25, 0.1, 0.0, 0.05, 0.35, 0.25])
    repeat_qty = rng.integers(1, 4, n_repeat).astype(np.float64)
    rev_account = np.concatenate([np.arange(n_acc), repeat_acc])
    rev_work = np.concatenate([first_invoice, repeat_at])
    rev_deal = np.concatenate([won, np.full(n_repeat, -1)])
    rev_product = np.concatenate([deals.product[won], repeat_product])
    rev_qty = np.concatenate([deals.quantity[won], repeat_qty])
    repeat_amount = price[repeat_product] * repeat_qty * rng.uniform(0.9, 1.0, n_repeat)
    rev_amount = np.concatenate([deals.amount[won], np.round(repeat_amount, 2)])
    order = np.argsort(rev_work, kind="stable")

    say("activities")
    acts = _make_activities(rng, cal, reps, leads, deals, acquired, active_until, deal_account)
    n_act = len(acts.local)

    say("spend, forecasts and targets")
    spend, forecasts, targets = _plans(rng, cal, reps, deals, acts, size, rate, currency)

    say("building frames")
    frames: dict[str, pd.DataFrame] = {}
    team_names = np.array(reps.team_names, object)
    frames["reps"] = _frame("reps", {
        "id": reps.ids, "name": reps.names, "email": reps.emails,
        "team": _text(team_names, reps.team), "manager_id": _text(reps.ids, reps.manager),
        "hired_at": _dates(reps.hired_day), "left_at": _dates(reps.left_day), "role": reps.role,
    })
    frames["products"] = _frame("products", {
        "id": np.array([p[0] for p in PRODUCTS], object),
        "name": np.array([p[1] for p in PRODUCTS], object),
        "category": np.array([p[2] for p in PRODUCTS], object),
        "price": price, "unit_cost": unit_cost,
        "currency": np.full(len(PRODUCTS), currency, object),
    })
    product_ids = frames["products"]["id"].to_numpy(object)

    acc_ids = _ids("C", n_acc, 6)
    acc_lead = deals.lead[won]
    acc_locale = reps.team_locale[np.maximum(reps.team[acc_rep], 0)]
    frames["accounts"] = _frame("accounts", {
        "id": acc_ids, "name": _account_names(rng, acc_locale, acc_b2b),
        "segment": np.where(acc_b2b, "b2b", "b2c").astype(object),
        "sector": np.where(acc_b2b, SECTORS[rng.integers(0, len(SECTORS), n_acc)], "consumer"),
        "source": SOURCES[leads.source[acc_lead]],
        "acquired_at": _timestamps(cal.work_to_utc(acquired)),
        "churned_at": _timestamps(cal.work_to_utc(churn), ~churned),
        "rep_id": reps.ids[acc_rep],
    })

    lead_ids = _ids("L", n_leads, 6)
    lead_deal = np.full(n_leads, -1, np.int64)
    lead_deal[deals.lead] = np.arange(n_deals)
    lead_account = np.full(n_leads, -1, np.int64)
    lead_account[acc_lead] = np.arange(n_acc)
    has_deal = lead_deal >= 0
    pending = leads.wants_deal & ~has_deal
    dropped = leads.contacted & ~leads.wants_deal & (leads.nurture_end < wc)
    silent_end = leads.created_work + 10 * WD
    silent = leads.never & (silent_end < wc)
    lost = dropped | silent
    lost_at = np.where(dropped, leads.nurture_end + rng.integers(60, WD, n_leads), silent_end)
    lost_at = np.where(lost_at < wc, lost_at, leads.nurture_end)
    status = np.full(n_leads, "new", object)
    status[leads.contacted | pending] = "in_progress"
    status[lost] = "lost"
    status[has_deal] = "qualified"
    lost_reason = LEAD_LOST_REASONS[rng.integers(0, len(LEAD_LOST_REASONS), n_leads)]
    lost_reason[silent] = "no_response"
    lost_reason[~lost] = None
    qualified_at = np.where(has_deal, deals.entered[np.maximum(lead_deal, 0), 0], 0)
    frames["leads"] = _frame("leads", {
        "id": lead_ids, "created_at": _timestamps(cal.to_utc(leads.created)),
        "rep_id": reps.ids[leads.rep], "source": SOURCES[leads.source],
        "segment": np.where(leads.b2b, "b2b", "b2c").astype(object), "status": status,
        "qualified_at": _timestamps(cal.work_to_utc(qualified_at), ~has_deal),
        "lost_at": _timestamps(cal.work_to_utc(lost_at), ~lost),
        "lost_reason": lost_reason,
        "account_id": _text(acc_ids, lead_account), "utm_campaign": UTM[leads.utm],
    }, extra=("utm_campaign",))

    deal_ids = _ids("D", n_deals, 6)
    current = deals.recorded.sum(axis=1) - 1
    status_code = np.where(deals.closed, np.where(deals.won, 1, 2), 0)
    stage = np.where(status_code == 1, 4, np.where(status_code == 2, 5, current))
    deal_lost_reason = DEAL_LOST_REASONS[rng.integers(0, len(DEAL_LOST_REASONS), n_deals)]
    deal_lost_reason[status_code != 2] = None
    probability = np.where(status_code == 1, 1.0, np.where(status_code == 2, 0.0,
                                                           STAGE_PROBABILITY[current]))
    frames["deals"] = _frame("deals", {
        "id": deal_ids, "rep_id": reps.ids[deals.owner],
        "status": np.array(["open", "won", "lost"], object)[status_code],
        "created_at": _timestamps(cal.work_to_utc(deals.entered[:, 0])),
        "lead_id": lead_ids[deals.lead], "account_id": _text(acc_ids, deal_account),
        "product_id": product_ids[deals.product], "pipeline": PIPELINES[deals.pipeline],
        "stage": STAGES[stage], "amount": deals.amount,
        "currency": np.full(n_deals, currency, object),
        "closed_at": _timestamps(cal.work_to_utc(deals.close), ~deals.closed),
        "expected_close_at": _timestamps(cal.work_to_utc(deals.expected_close)),
        "probability": probability,
        "lost_reason": deal_lost_reason,
    })

    sc_deal, sc_stage = np.nonzero(deals.recorded)
    sc_work = deals.entered[sc_deal, sc_stage]
    fin = np.flatnonzero(deals.closed)
    sc_deal = np.concatenate([sc_deal, fin])
    sc_stage = np.concatenate([sc_stage, np.where(deals.won[fin], 4, 5)])
    sc_work = np.concatenate([sc_work, deals.close[fin]])
    order_sc = np.lexsort((sc_work, sc_deal))
    sc_deal, sc_stage, sc_work = sc_deal[order_sc], sc_stage[order_sc], sc_work[order_sc]
    frames["stage_changes"] = _frame("stage_changes", {
        "deal_id": deal_ids[sc_deal], "stage": STAGES[sc_stage],
        "entered_at": _timestamps(cal.work_to_utc(sc_work)),
        "rep_id": reps.ids[reps.owner(leads.rep[deals.lead[sc_deal]], sc_work)],
        "pipeline": PIPELINES[deals.pipeline[sc_deal]],
    })

    frames["revenue"] = _frame("revenue", {
        "id": _ids("V", len(order), 6), "account_id": acc_ids[rev_account[order]],
        "amount": rev_amount[order],
        "occurred_at": _timestamps(cal.work_to_utc(rev_work[order])),
        "deal_id": _text(deal_ids, rev_deal[order]),
        "product_id": product_ids[rev_product[order]], "quantity": rev_qty[order],
        "cost": unit_cost[rev_product[order]] * rev_qty[order],
        "currency": np.full(len(order), currency, object),
    })
    frames["spend"] = spend
    frames["forecasts"] = forecasts
    frames["targets"] = targets

    say(f"activities frame ({n_act:,} rows)")
    utc = cal.to_utc(acts.local)
    too_late = utc >= cal.cutoff_utc  # only possible around a DST change at the cut-off
    occurred_at = _timestamps(utc)
    del utc, acts.local
    outcome, seconds, has_seconds = _outcomes_and_durations(rng, acts.type, acts.direction)
    activity = _frame("activities", {
        "id": _ids("A", n_act, 7), "type": TYPES[acts.type], "rep_id": reps.ids[acts.rep],
        "occurred_at": occurred_at, "lead_id": _text(lead_ids, acts.lead),
        "deal_id": _text(deal_ids, acts.deal), "account_id": _text(acc_ids, acts.account),
        "direction": DIRECTIONS[acts.direction], "outcome": OUTCOMES[outcome],
        "duration_s": pd.arrays.IntegerArray(seconds, ~has_seconds),
        "selling": (acts.type != INTERNAL) & (acts.type != REPORT),
    })
    if too_late.any():
        activity = activity[~too_late].reset_index(drop=True)
    frames["activities"] = activity
    return {name: frames[name] for name in (
        "reps", "leads", "deals", "stage_changes", "activities", "accounts", "products",
        "revenue", "spend", "forecasts", "targets")}


# --------------------------------------------------------------------------- plans


def _plans(
    rng: Rng, cal: _Calendar, reps: _Reps, deals: _Deals, acts: _Activities, size: float,
    rate: float, currency: str,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Monthly spend, per-rep forecasts (commit, best case) and per-rep targets."""
    first_m = int(_month_index(np.array([cal.start_day * DAY]))[0])
    last_m = int(_month_index(np.array([(cal.end_day - 1) * DAY]))[0])
    months = np.arange(first_m, last_m + 1)
    n_m = len(months)
    month_first = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    month_last = (months + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - 1
    month_len = month_last - month_first + 1
    covered = np.minimum(month_last + 1, cal.end_day) - np.maximum(month_first, cal.start_day)
    elapsed = covered / month_len
    team_names = np.array(reps.team_names, object)

    # Spend: marketing per channel, sales per team, prorated in partial months.
    channels = (("seo", 3000), ("content", 2000), ("google_ads", 9000), ("meta_ads", 6000),
                ("partner_program", 4000), ("referral_bonus", 1500), ("exhibitions", 15000))
    rows: list[tuple[int, float, str, str, str | None]] = []
    for m in range(n_m):  # per month
        for channel, base in channels:
            if channel == "exhibitions" and m % 4 != 1:
                continue
            amount = base * size * rate * elapsed[m] * np.exp(0.15 * rng.standard_normal())
            rows.append((int(month_first[m]), amount, "marketing", channel, None))
        for t, name in enumerate(reps.team_names):
            members = (reps.team == t) & (reps.hired_day <= month_last[m])
            members &= (reps.left_day < 0) | (reps.left_day > month_first[m])
            heads = int(members.sum())
            for channel, base in (("payroll", 3200), ("tools", 150)):
                amount = heads * base * rate * elapsed[m] * rng.uniform(0.95, 1.05)
                rows.append((int(month_first[m]), amount, "sales", channel, name))
    spend = _frame("spend", {
        "id": _ids("S", len(rows), 5), "date": _dates(np.array([r[0] for r in rows])),
        "amount": np.array([r[1] for r in rows]),
        "category": np.array([r[2] for r in rows], object),
        "channel": np.array([r[3] for r in rows], object),
        "currency": np.full(len(rows), currency, object),
        "team": np.array([r[4] for r in rows], object),
    })

    # Actuals per rep and month, to anchor forecasts and targets.
    n_r = len(reps.ids)
    won = deals.won & deals.closed
    won_m = _month_index(_from_work(deals.close[won])) - first_m
    cell = deals.owner[won] * n_m + won_m
    deals_won = np.bincount(cell, minlength=n_r * n_m).reshape(n_r, n_m).astype(np.float64)
    revenue = np.bincount(cell, deals.amount[won], minlength=n_r * n_m).reshape(n_r, n_m)
    calls = (acts.type == CALL) & (acts.direction == OUT)
    call_cell = acts.rep[calls].astype(np.int64) * n_m + (_month_index(acts.local[calls]) - first_m)
    n_calls = np.bincount(call_cell, minlength=n_r * n_m).reshape(n_r, n_m).astype(np.float64)

    sellers = reps.sellers
    employed = (reps.hired_day[sellers, None] <= month_last[None, :]) & (
        (reps.left_day[sellers, None] < 0) | (reps.left_day[sellers, None] > month_first[None, :])
    )
    start = np.maximum(reps.hired_day[sellers, None], month_first[None, :])
    stop = np.where(reps.left_day[sellers, None] >= 0,
                    np.minimum(reps.left_day[sellers, None], month_last[None, :] + 1),
                    month_last[None, :] + 1)
    days_employed = np.clip(stop - start, 0, None) * employed
    worked = np.clip(np.minimum(stop, cal.end_day) - np.maximum(start, cal.start_day), 0, None)

    # Forecasts: made on the working day before each month, optimistic reps overshoot.
    bias = 0.1 + 0.15 * rng.standard_normal(n_r)
    f_rows: list[tuple[int, int, int, float, str]] = []
    made_at = _to_work(month_first * DAY) - 2 * HOUR
    avg = revenue[sellers].sum(axis=1) / np.maximum(worked.sum(axis=1), 1) * 30
    for k, r in enumerate(sellers):  # per rep
        for m in range(n_m):
            if reps.hired_day[r] >= month_first[m] or not employed[k, m]:
                continue
            actual = revenue[r, m] / max(elapsed[m], 0.05)
            expected = 0.6 * actual + 0.4 * avg[k] if actual > 0 else 0.6 * avg[k]
            commit = expected * 0.9 * np.exp(bias[r] + 0.25 * rng.standard_normal())
            commit = round(commit, -2)
            best = round(commit * rng.uniform(1.2, 1.6) + 0.1 * avg[k], -2)
            f_rows += [(r, m, 0, commit, "commit"), (r, m, 1, best, "best_case")]
    f_r = np.array([f[0] for f in f_rows], np.int64)
    f_m = np.array([f[1] for f in f_rows], np.int64)
    forecasts = _frame("forecasts", {
        "id": _ids("F", len(f_rows), 5),
        "made_at": _timestamps(cal.work_to_utc(made_at[f_m])),
        "period_start": _dates(month_first[f_m]), "period_end": _dates(month_last[f_m]),
        "amount": np.array([f[3] for f in f_rows]), "rep_id": reps.ids[f_r],
        "team": team_names[reps.team[f_r]],
        "category": np.array([f[4] for f in f_rows], object),
        "currency": np.full(len(f_rows), currency, object),
    })

    # Targets: the team's daily rate per regular rep, grown a little each month,
    # so reps below the team average fall behind plan.
    t_rows: list[tuple[str, int, int, float]] = []
    growth = 1.0 + 0.1 * np.arange(n_m) / max(n_m - 1, 1)
    is_rep = reps.role[sellers] == "rep"
    for kpi, actual, step in (("deals_won", deals_won, 1), ("revenue", revenue, 500),
                              ("calls", n_calls, 10)):
        for t in range(len(reps.team_names)):  # per team
            mine = (reps.team[sellers] == t) & is_rep
            if not mine.any():
                mine = reps.team[sellers] == t
            daily = actual[sellers[mine]].sum() / max(worked[mine].sum(), 1)
            for j in np.flatnonzero(reps.team[sellers] == t):
                r = sellers[j]
                factor = 0.6 if reps.role[r] == "team_lead" else 1.0
                for mm in np.flatnonzero(employed[j]):
                    m = int(mm)
                    ramp = 0.5 if month_first[m] <= reps.hired_day[r] <= month_last[m] else 1.0
                    value = daily * days_employed[j, m] * growth[m] * 1.05 * factor * ramp
                    value = max(step, round(value / step) * step)
                    t_rows.append((kpi, int(r), int(m), float(value)))
    t_r = np.array([t[1] for t in t_rows], np.int64)
    t_m = np.array([t[2] for t in t_rows], np.int64)
    targets = _frame("targets", {
        "kpi": np.array([t[0] for t in t_rows], object),
        "period_start": _dates(month_first[t_m]), "period_end": _dates(month_last[t_m]),
        "value": np.array([t[3] for t in t_rows]), "rep_id": reps.ids[t_r],
        "team": team_names[reps.team[t_r]],
    })
    return spend, forecasts, targets
