"""Demo users, one per role, so the dashboard can be tried at once.

Their passwords are printed by ``saleskpi demo``: they are for a demo
workspace on one's own machine, never for real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from saleskpi.domain.settings import Settings
from saleskpi.service.auth import AuthError, add_user, list_users


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    who: str  # the team or rep the login is scoped to


def ensure_demo_users(settings: Settings, reps: pd.DataFrame) -> list[DemoLogin]:
    """admin, head, a team lead and a rep of the demo company (created once)."""
    leads = reps[reps["role"] == "team_lead"]
    team = str(leads.iloc[0]["team"]) if len(leads) else str(reps["team"].dropna().iloc[0])
    members = reps[(reps["team"] == team) & (reps["role"] == "rep")]
    rep = members.iloc[0] if len(members) else reps.iloc[0]
    logins = [
        DemoLogin("admin", "admin-demo-pass", "admin", ""),
        DemoLogin("head", "head-demo-pass", "head", ""),
        DemoLogin("lead", "lead-demo-pass", "team_lead", team),
        DemoLogin("rep", "rep-demo-pass", "rep", f"{rep['name']} ({rep['id']})"),
    ]
    existing = {u.username for u in list_users(settings)}
    for login in logins:
        if login.username in existing:
            continue
        try:
            add_user(settings, login.username, login.password, login.role,
                     rep_id=str(rep["id"]) if login.role == "rep" else None,
                     team=team if login.role == "team_lead" else None)
        except AuthError:
            continue  # a user by that name was made by hand: keep it
    return logins
