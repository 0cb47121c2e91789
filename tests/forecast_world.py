"""A sales team whose true chances and cycle times are known, for the forecast's tests.

Deals arrive as a Poisson process per rep. Each enters ``Qualify``, stays an
exponential time (mean ``QUALIFY_DAYS``), then moves to ``Proposal`` with the rep's
chance ``advance`` or is lost; in ``Proposal`` it stays an exponential time (mean
``PROPOSAL_DAYS``) and is won with chance ``CLOSE`` or lost. The times do not
depend on the outcome and are memoryless, so the chance to win does not depend on
a deal's age in its stage: P(won | Qualify) = advance × CLOSE, P(won | Proposal) =
CLOSE, at any age.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from saleskpi.domain.forecasting import DealHistory

START = dt.datetime(2023, 1, 1)
QUALIFY_DAYS = 12.0
PROPOSAL_DAYS = 20.0
CLOSE = 0.5


@dataclass(frozen=True)
class Rep:
    id: str
    team: str
    per_day: float  # deals created per day
    advance: float  # chance to leave Qualify for Proposal


@dataclass(frozen=True)
class TrueDeal:
    rep: Rep
    id: str
    created: dt.datetime
    proposal: dt.datetime | None
    closed: dt.datetime
    won: bool
    amount: float


def generate(reps: list[Rep], days: float, seed: int) -> list[TrueDeal]:
    """Every deal created within ``days`` of START, with its whole future."""
    rng = np.random.default_rng(seed)
    deals = []
    for rep in reps:
        count = rng.poisson(rep.per_day * days)
        for i, offset in enumerate(np.sort(rng.random(count) * days)):
            created = START + dt.timedelta(days=float(offset))
            left = created + dt.timedelta(days=float(rng.exponential(QUALIFY_DAYS)))
            proposal = None
            won = False
            closed = left
            if rng.random() < rep.advance:
                proposal = left
                closed = left + dt.timedelta(days=float(rng.exponential(PROPOSAL_DAYS)))
                won = bool(rng.random() < CLOSE)
            amount = float(round(rng.lognormal(7.0, 0.5), 2))
            deals.append(TrueDeal(rep, f"{rep.id}-{i}", created, proposal, closed, won, amount))
    return deals


def as_known(deals: list[TrueDeal], at: dt.datetime) -> list[DealHistory]:
    """The deals as a CRM shows them at ``at``: later deals unknown, later closes open."""
    known = []
    for deal in deals:
        if deal.created > at:
            continue
        entries: list[tuple[str, dt.datetime]] = [("Qualify", deal.created)]
        if deal.proposal is not None and deal.proposal <= at:
            entries.append(("Proposal", deal.proposal))
        closed = deal.closed <= at
        status = ("won" if deal.won else "lost") if closed else "open"
        known.append(DealHistory(
            source="test", id=deal.id, rep=deal.rep.id, team=deal.rep.team,
            pipeline="sales", stage=entries[-1][0] if not closed else status.title(),
            status=status, created_at=deal.created, closed_at=deal.closed if closed else None,
            expected_close_at=None, probability=None,
            amount=0.0 if closed and not deal.won else deal.amount, entries=tuple(entries)))
    return known


def won_between(deals: list[TrueDeal], start: dt.datetime, end: dt.datetime,
                rep: str | None = None) -> float:
    return sum(d.amount for d in deals if d.won and start <= d.closed < end
               and (rep is None or d.rep.id == rep))


def write_csv(deals: list[TrueDeal], at: dt.datetime, folder: Path) -> None:
    """reps.csv, deals.csv and stage_changes.csv as a CRM exports them at ``at``."""
    folder.mkdir(parents=True, exist_ok=True)
    reps = {d.rep.id: d.rep for d in deals}
    with (folder / "reps.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name", "team"])
        for rep in sorted(reps.values(), key=lambda r: r.id):
            writer.writerow([rep.id, f"Rep {rep.id.upper()}", rep.team])
    known = as_known(deals, at)
    with (folder / "deals.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "rep_id", "status", "pipeline", "stage", "amount", "currency",
                         "created_at", "closed_at"])
        for deal in known:
            writer.writerow([deal.id, deal.rep, deal.status, deal.pipeline, deal.stage,
                             f"{deal.amount:.2f}", "USD", _stamp(deal.created_at),
                             _stamp(deal.closed_at)])
    with (folder / "stage_changes.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["deal_id", "stage", "entered_at"])
        for deal in known:
            for stage, entered in deal.entries:
                writer.writerow([deal.id, stage, _stamp(entered)])
            if deal.status != "open" and deal.closed_at is not None:
                writer.writerow([deal.id, deal.status.title(), _stamp(deal.closed_at)])


def _stamp(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")
