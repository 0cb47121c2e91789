"""Who a rule tells, and what each of them may be told.

``recipients`` of a rule resolve to users of the workspace (disabled ones left out):
``roles`` every user of the role, ``teams`` the team leads of those teams, ``reps``
the users signed in as those reps, ``users`` by name. Each recipient is told only
about subjects in their scope, as every page shows them: a head of sales or an admin
everything, a team lead their team's reps (and the team), a rep their own records.
Findings about the whole company go to those who see everything; findings about
the product itself (stale data) to every recipient.
"""

from __future__ import annotations

from saleskpi.domain.alert_states import Finding
from saleskpi.domain.alerts import Recipients
from saleskpi.domain.settings import Settings
from saleskpi.service.auth import disabled_ids, list_users
from saleskpi.service.principal import Principal


def workspace_users(settings: Settings) -> list[Principal]:
    """The users who can be told anything: every user not disabled."""
    off = disabled_ids(settings)
    return [u for u in list_users(settings) if u.user_id not in off]


def resolve(recipients: Recipients, users: list[Principal]) -> list[Principal]:
    """The users a rule's ``recipients`` name, in name order, each once."""
    return [u for u in users
            if u.role in recipients.roles
            or (u.role == "team_lead" and u.team is not None and u.team in recipients.teams)
            or (u.rep_id is not None and u.rep_id in recipients.reps)
            or u.username in recipients.users]


def unknown_names(recipients: Recipients, users: list[Principal]) -> list[str]:
    """Users, reps and teams a rule names that no (enabled) user stands for."""
    names = {u.username for u in users}
    reps = {u.rep_id for u in users if u.rep_id}
    teams = {u.team for u in users if u.role == "team_lead" and u.team}
    return [*(f"user {n}" for n in recipients.users if n not in names),
            *(f"rep {r}" for r in recipients.reps if r not in reps),
            *(f"team {t}" for t in recipients.teams if t not in teams)]


def may_see(user: Principal, finding: Finding) -> bool:
    """Whether ``user``'s scope covers ``finding`` (as their pages would show it)."""
    if finding.public or user.role in ("admin", "head"):
        return True
    if finding.company:
        return False
    if user.role == "team_lead":
        return bool(user.team) and finding.team == user.team
    return bool(user.rep_id) and finding.rep == user.rep_id
