"""Who is asking: the caller of one request, and the scope of data they may see.

Apart from ``saleskpi.service.auth`` (users, passwords, tokens: SQLAlchemy and
Argon2) so that views, which only need the caller, import neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from saleskpi.domain.query import EVERYTHING, Scope


@dataclass(frozen=True)
class Principal:
    """The caller of one request: enough to scope queries and check permissions."""

    user_id: int
    username: str
    role: str
    rep_id: str | None
    team: str | None
    lang: str

    @property
    def scope(self) -> Scope:
        if self.role in ("admin", "head"):
            return EVERYTHING
        if self.role == "team_lead":
            return Scope(teams=frozenset({self.team or ""}))
        return Scope(rep_ids=frozenset({self.rep_id or ""}))

    @property
    def can_manage(self) -> bool:
        """Imports, targets, catalogue and users: admin and head of sales."""
        return self.role in ("admin", "head")
