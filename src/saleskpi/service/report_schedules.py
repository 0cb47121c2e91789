"""Which digest goes to whom, and when: the schedules of the workspace's reports.yaml.

```yaml
schedules:
  - name: morning           # also part of each digest's key: sent once per run
    digest: daily           # daily or weekly
    cron: "0 8 * * 1-5"     # minute hour day month weekday, in the company's time zone
    to: [head, team_lead]   # roles (admin, head, team_lead, rep, all) or usernames
```

Without the file, ``DEFAULT_SCHEDULES`` apply (a daily digest for heads and team
leads on working days at 8:00, a weekly one for reps on Monday at 8:00); only
people with a contact receive anything. ``schedules: []`` turns them all off.
Times are cron expressions (croniter) read in the company's time zone, so 8:00
stays 8:00 across daylight saving.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saleskpi.domain.errors import InvalidQuery, NotFound
from saleskpi.domain.i18n import _
from saleskpi.domain.settings import Settings
from saleskpi.service.auth import ROLES, disabled_ids, list_users
from saleskpi.service.core import SalesKpiService
from saleskpi.service.principal import Principal

REPORTS_FILE = "reports.yaml"
DIGESTS = ("daily", "weekly")
EVERYBODY = "all"


@dataclass(frozen=True)
class ReportSchedule:
    name: str
    digest: str  # one of DIGESTS
    cron: str
    to: tuple[str, ...]


DEFAULT_SCHEDULES = (
    ReportSchedule("daily", "daily", "0 8 * * 1-5", ("head", "team_lead")),
    ReportSchedule("weekly", "weekly", "0 8 * * 1", ("rep",)),
)


def reports_path(settings: Settings) -> Path:
    return settings.workspace / REPORTS_FILE


def _problem(path: Path, where: str, message: str) -> InvalidQuery:
    return InvalidQuery(_("{file}, {where}: {problem}", file=str(path), where=where,
                          problem=message), code="bad_schedule")


def load_schedules(settings: Settings) -> list[ReportSchedule]:
    """The schedules in force; ``InvalidQuery`` (code ``bad_schedule``) names the file, the
    entry and the field of anything wrong."""
    path = reports_path(settings)
    if not path.is_file():
        return list(DEFAULT_SCHEDULES)
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise _problem(path, _("line {line}", line=getattr(getattr(exc, "problem_mark", None),
                                                           "line", -1) + 1),
                       _("not valid YAML")) from None
    entries = data.get("schedules") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise _problem(path, "schedules", _("expected a list of schedules (see "
                                            "docs/reports.md)"))
    found: list[ReportSchedule] = []
    for index, entry in enumerate(entries, start=1):
        found.append(_schedule(path, index, entry))
    names = [s.name for s in found]
    for name in names:
        if names.count(name) > 1:
            raise _problem(path, _("schedule {name!r}", name=name),
                           _("two schedules have this name; names must differ"))
    return found


def _schedule(path: Path, index: int, entry: Any) -> ReportSchedule:
    where = _("schedule {n}", n=index)
    if not isinstance(entry, dict):
        raise _problem(path, where, _("expected name, digest, cron and to"))
    name = str(entry.get("name") or "").strip()
    if not name or len(name) > 60 or ":" in name:
        raise _problem(path, where, _("name: give each schedule a short name without ':'"))
    where = _("schedule {name!r}", name=name)
    digest = str(entry.get("digest") or "daily").strip()
    if digest not in DIGESTS:
        raise _problem(path, where, _("digest: {value!r} is not one of {known}", value=digest,
                                      known=", ".join(DIGESTS)))
    cron = str(entry.get("cron") or "").strip()
    if not valid_cron(cron):
        raise _problem(path, where, _("cron: {value!r} is not a cron expression like "
                                      "\"0 8 * * 1-5\" (minute hour day month weekday)",
                                      value=cron))
    to = entry.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(t, str) and t.strip()
                                                     for t in to):
        raise _problem(path, where, _("to: list the roles or usernames who receive it"))
    return ReportSchedule(name, digest, cron, tuple(t.strip() for t in to))


def valid_cron(expression: str) -> bool:
    from croniter import croniter

    return len(expression.split()) == 5 and bool(croniter.is_valid(expression))


def next_run(schedule: ReportSchedule, after: dt.datetime, zone: str) -> dt.datetime:
    """The first run strictly after ``after`` (aware), in the company's time zone."""
    from croniter import croniter

    local = after.astimezone(zoneinfo.ZoneInfo(zone))
    following: dt.datetime = croniter(schedule.cron, local).get_next(dt.datetime)
    return following


def due_run(schedule: ReportSchedule, since: dt.datetime, until: dt.datetime,
            zone: str) -> dt.datetime | None:
    """The latest run in (``since``, ``until``], if any: runs missed while nothing checked
    (the server was down) collapse into the last one."""
    due = None
    run = next_run(schedule, since, zone)
    while run <= until:
        due = run
        run = next_run(schedule, run, zone)
    return due


def recipients(service: SalesKpiService, names: Sequence[str]) -> list[Principal]:
    """The enabled users named, or having one of the roles named (``all``: everybody),
    each once, by username; ``NotFound`` (code ``unknown_recipient``) for a name that is
    neither."""
    people = list_users(service.settings)
    disabled = disabled_ids(service.settings)
    chosen: dict[str, Principal] = {}
    for name in names:
        key = name.strip()
        matched = [p for p in people if key in (EVERYBODY, p.role, p.username)]
        if not matched and key not in ROLES:
            raise NotFound(_("no user or role {name!r}; use a username or one of {roles}",
                             name=key, roles=", ".join((*ROLES, EVERYBODY))),
                           code="unknown_recipient")
        chosen |= {p.username: p for p in matched if p.user_id not in disabled}
    return [chosen[k] for k in sorted(chosen)]
