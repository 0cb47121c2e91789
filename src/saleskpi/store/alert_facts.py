"""The facts alert rules read: leads with their first contact, deals' time in stages.

Every row carries what an alert must say and whom it concerns: the record's id and
source, its rep and the rep's team. Times are naive UTC, as stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from saleskpi.store.facts import FactStore


@dataclass(frozen=True)
class LeadContact:
    datasource: str
    lead: str
    created_at: dt.datetime
    first_contact_at: dt.datetime | None
    lost_at: dt.datetime | None
    source: str | None
    rep: str | None
    rep_name: str | None
    team: str | None


def lead_contacts(store: FactStore, created_from: dt.datetime, created_to: dt.datetime,
                  sources: Sequence[str] = ()) -> list[LeadContact]:
    """Leads created in [created_from, created_to], with their first outbound contact."""
    only = "AND l.source IN (SELECT unnest($sources::VARCHAR[]))" if sources else ""
    rows = store.fetch(f"""
        SELECT l.datasource, CAST(l.id AS VARCHAR), l.created_at, f.first_contact_at,
               l.lost_at, l.source, CAST(l.rep_id AS VARCHAR), r.name, r.team
        FROM leads l
        LEFT JOIN lead_first_contacts f ON f.datasource = l.datasource AND f.lead_id = l.id
        LEFT JOIN reps r ON r.datasource = l.datasource AND r.id = l.rep_id
        WHERE l.created_at >= $first AND l.created_at <= $last {only}
        ORDER BY l.created_at, l.datasource, l.id""",
        {"first": created_from, "last": created_to,
         **({"sources": list(sources)} if sources else {})})
    return [LeadContact(*row) for row in rows]


@dataclass(frozen=True)
class StageSpan:
    """A deal's time in one stage: from entering it until the next stage or its close."""

    datasource: str
    deal: str
    stage: str
    pipeline: str | None
    entered_at: dt.datetime
    left_at: dt.datetime | None  # None: still in it (as the data stands)
    rep: str | None
    rep_name: str | None
    team: str | None


# A deal's stage entries: its stage history, or (a CRM without one) its current stage
# since its creation. Each span ends at the next entry, or at the deal's close.
_SPANS = """
    WITH entries AS (
        SELECT datasource, CAST(deal_id AS VARCHAR) AS deal, stage, pipeline, entered_at
        FROM stage_changes
        UNION ALL
        SELECT d.datasource, CAST(d.id AS VARCHAR), d.stage, d.pipeline, d.created_at
        FROM deals d
        WHERE d.created_at IS NOT NULL AND d.stage IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM stage_changes s
            WHERE s.datasource = d.datasource AND s.deal_id = d.id)
    ),
    ordered AS (
        SELECT *, lead(entered_at) OVER (PARTITION BY datasource, deal
                                         ORDER BY entered_at) AS next_at
        FROM entries
    )
    SELECT o.datasource, o.deal, o.stage, coalesce(o.pipeline, d.pipeline), o.entered_at,
           CASE WHEN d.status = 'open' THEN o.next_at
                ELSE least(o.next_at, coalesce(d.closed_at, o.entered_at)) END AS left_at,
           CAST(d.rep_id AS VARCHAR), r.name, r.team
    FROM ordered o
    JOIN deals d ON d.datasource = o.datasource AND CAST(d.id AS VARCHAR) = o.deal
    LEFT JOIN reps r ON r.datasource = d.datasource AND r.id = d.rep_id
"""


def stage_spans(store: FactStore, first: dt.datetime,
                last: dt.datetime) -> list[StageSpan]:
    """Every span of time in a stage that overlaps [first, last]: entered by ``last``,
    not left by ``first`` (spans of no length left out)."""
    rows = store.fetch(f"""
        SELECT * FROM ({_SPANS}) s
        WHERE s.entered_at <= $last AND (s.left_at IS NULL OR s.left_at > $first)
          AND (s.left_at IS NULL OR s.left_at > s.entered_at)
        ORDER BY s.entered_at, s.datasource, s.deal""", {"first": first, "last": last})
    return [StageSpan(*row) for row in rows]
