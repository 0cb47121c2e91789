"""The canonical data contract (docs: data-contract.md) as code.

Every source is mapped onto these entities; the column names are the contract.
The analytical store has one table per entity with exactly these columns plus
``source`` (where the row came from) and ``custom`` (extra columns, as JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ColumnType(StrEnum):
    """How a column is parsed from text and stored."""

    TEXT = "text"
    TIMESTAMP = "timestamp"  # stored as UTC, naive
    DATE = "date"
    MONEY = "money"  # DECIMAL(18, 2)
    NUMBER = "number"  # DOUBLE
    INTEGER = "integer"
    BOOLEAN = "boolean"


SQL_TYPES: dict[ColumnType, str] = {
    ColumnType.TEXT: "VARCHAR",
    ColumnType.TIMESTAMP: "TIMESTAMP",
    ColumnType.DATE: "DATE",
    ColumnType.MONEY: "DECIMAL(18, 2)",
    ColumnType.NUMBER: "DOUBLE",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.BOOLEAN: "BOOLEAN",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = ColumnType.TEXT
    required: bool = False
    # Allowed values (after lower-casing); None means free text.
    choices: tuple[str, ...] | None = None
    # Entity whose ``id`` this column refers to (within the same source).
    references: str | None = None
    # Sane bounds of a number column, inclusive (None: only the type's own limit,
    # NUMBER_LIMIT): a file's value outside them is refused, not stored.
    low: float | None = None
    high: float | None = None


# Every number and whole number lies within ±NUMBER_LIMIT: beyond it a DOUBLE no
# longer holds every whole number exactly, and no sales figure is that large.
NUMBER_LIMIT = 10.0**15
# A call or meeting longer than a month is a unit mistake (milliseconds for seconds).
MAX_DURATION_S = 31 * 24 * 3600


@dataclass(frozen=True)
class Entity:
    name: str
    columns: tuple[Column, ...]
    # Columns that identify a row within a source; re-importing a row with the
    # same key updates it instead of adding it.
    key: tuple[str, ...] = ("id",)
    # Column that holds the row's main timestamp, shown in import reports.
    description: str = ""
    money_currency_column: str | None = None
    extra_rules: tuple[str, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


T = ColumnType

DEAL_STATUSES = ("open", "won", "lost")

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "reps",
            (
                Column("id", required=True),
                Column("name", required=True),
                Column("email"),
                Column("team"),
                Column("manager_id", references="reps"),
                Column("hired_at", T.DATE),
                Column("left_at", T.DATE),
                Column("role"),
            ),
            description="sales reps (managers)",
        ),
        Entity(
            "leads",
            (
                Column("id", required=True),
                Column("created_at", T.TIMESTAMP, required=True),
                Column("rep_id", references="reps"),
                Column("source"),
                Column("segment"),
                Column("status"),
                Column("qualified_at", T.TIMESTAMP),
                Column("lost_at", T.TIMESTAMP),
                Column("lost_reason"),
                Column("account_id", references="accounts"),
            ),
            description="incoming leads",
        ),
        Entity(
            "deals",
            (
                Column("id", required=True),
                Column("rep_id", required=True, references="reps"),
                Column("status", required=True, choices=DEAL_STATUSES),
                Column("created_at", T.TIMESTAMP),
                Column("lead_id", references="leads"),
                Column("account_id", references="accounts"),
                Column("product_id", references="products"),
                Column("pipeline"),
                Column("stage"),
                Column("amount", T.MONEY),
                Column("currency"),
                Column("closed_at", T.TIMESTAMP),
                Column("expected_close_at", T.TIMESTAMP),
                Column("probability", T.NUMBER, low=0, high=100),  # 0-1 or 0-100
                Column("lost_reason"),
            ),
            description="deals (opportunities)",
            money_currency_column="currency",
        ),
        Entity(
            "stage_changes",
            (
                Column("deal_id", required=True, references="deals"),
                Column("stage", required=True),
                Column("entered_at", T.TIMESTAMP, required=True),
                Column("rep_id", references="reps"),
                Column("pipeline"),
            ),
            key=("deal_id", "stage", "entered_at"),
            description="deal stage history",
        ),
        Entity(
            "activities",
            (
                Column("id", required=True),
                Column("type", required=True),
                Column("rep_id", required=True, references="reps"),
                Column("occurred_at", T.TIMESTAMP, required=True),
                Column("lead_id", references="leads"),
                Column("deal_id", references="deals"),
                Column("account_id", references="accounts"),
                Column("direction", choices=("in", "out")),
                Column("outcome"),
                Column("duration_s", T.INTEGER, low=0, high=MAX_DURATION_S),
                Column("selling", T.BOOLEAN),
            ),
            description="calls, meetings, emails and other activities",
        ),
        Entity(
            "accounts",
            (
                Column("id", required=True),
                Column("name", required=True),
                Column("segment"),
                Column("sector"),
                Column("source"),
                Column("acquired_at", T.TIMESTAMP),
                Column("churned_at", T.TIMESTAMP),
                Column("rep_id", references="reps"),
            ),
            description="customer companies",
        ),
        Entity(
            "products",
            (
                Column("id", required=True),
                Column("name", required=True),
                Column("category"),
                Column("price", T.MONEY),
                Column("unit_cost", T.MONEY),
                Column("currency"),
            ),
            description="products",
            money_currency_column="currency",
        ),
        Entity(
            "revenue",
            (
                Column("id", required=True),
                Column("account_id", required=True, references="accounts"),
                Column("amount", T.MONEY, required=True),
                Column("occurred_at", T.TIMESTAMP, required=True),
                Column("deal_id", references="deals"),
                Column("product_id", references="products"),
                Column("quantity", T.NUMBER),  # negative: a return
                Column("cost", T.MONEY),
                Column("currency"),
            ),
            description="revenue transactions (invoices, payments)",
            money_currency_column="currency",
        ),
        Entity(
            "spend",
            (
                Column("id", required=True),
                Column("date", T.DATE, required=True),
                Column("amount", T.MONEY, required=True),
                Column("category", required=True, choices=("marketing", "sales")),
                Column("channel"),
                Column("currency"),
                Column("team"),
            ),
            description="marketing and sales spend",
            money_currency_column="currency",
        ),
        Entity(
            "forecasts",
            (
                Column("id", required=True),
                Column("made_at", T.TIMESTAMP, required=True),
                Column("period_start", T.DATE, required=True),
                Column("period_end", T.DATE, required=True),
                Column("amount", T.MONEY, required=True),
                Column("rep_id", references="reps"),
                Column("team"),
                Column("category", choices=("commit", "best_case", "pipeline")),
                Column("currency"),
            ),
            description="revenue forecasts made in the past",
            money_currency_column="currency",
        ),
        Entity(
            "targets",
            (
                Column("kpi", required=True),
                Column("period_start", T.DATE, required=True),
                Column("period_end", T.DATE, required=True),
                Column("value", T.NUMBER, required=True),
                Column("rep_id", references="reps"),
                Column("team"),
            ),
            key=("kpi", "period_start", "period_end", "rep_id", "team"),
            description="plans per KPI, rep, team or company",
        ),
        Entity(
            "market",
            (
                Column("period_start", T.DATE, required=True),
                Column("period_end", T.DATE, required=True),
                Column("volume", T.NUMBER, required=True, low=0),
                Column("segment"),
                Column("unit", choices=("money", "units")),
                Column("currency"),
            ),
            key=("period_start", "period_end", "segment", "unit"),
            description="market volume, for market share",
        ),
        Entity(
            "fx_rates",
            (
                Column("date", T.DATE, required=True),
                Column("currency", required=True),
                Column("rate", T.NUMBER, required=True, low=0),
            ),
            key=("date", "currency"),
            description="exchange rates: units of reporting currency per unit",
        ),
    )
}

# Order in which entities are validated and written: referenced entities first.
LOAD_ORDER: tuple[str, ...] = (
    "reps",
    "accounts",
    "products",
    "leads",
    "deals",
    "stage_changes",
    "activities",
    "revenue",
    "spend",
    "forecasts",
    "targets",
    "market",
    "fx_rates",
)

assert set(LOAD_ORDER) == set(ENTITIES)


def entity(name: str) -> Entity:
    """The entity called ``name``; KeyError names the known ones."""
    try:
        return ENTITIES[name]
    except KeyError:
        raise KeyError(f"unknown entity {name!r}; known: {', '.join(ENTITIES)}") from None


# What a rep does to reach a lead. Notes and tasks are not contact.
CONTACT_TYPES = ("call", "email", "mail", "meeting", "presentation", "demo", "proposal")

# Activity key column -> the table of first contacts per that key.
FIRST_CONTACT_TABLES = {"lead_id": "lead_first_contacts", "deal_id": "deal_first_contacts"}


# Derived columns per view, for validation of user KPIs and the docs.
DERIVED_COLUMNS: dict[str, dict[str, str]] = {
    "leads": {
        "first_contact_at": "first outbound call, email, meeting, proposal or demo on the lead",
        "response_s": "seconds from creation to first contact (NULL if none or negative)",
        "contacted_before_created": "true when the first contact predates the lead (bad data)",
        "has_deal": "true when a deal refers to the lead",
        "has_won_deal": "true when a won deal refers to the lead",
        "processing_s": "seconds from the lead's creation to its first deal's creation",
        "has_call": "true when the lead had a call",
        "meeting_after_call": "true when a meeting on the lead followed its first call",
        "touches_before_meeting": "contact activities on the lead before its first meeting "
                                  "(NULL without a meeting)",
    },
    "deals": {
        "amount_rc": "amount in the reporting currency (fx_rates by close, else creation, date)",
        "close_s": "seconds from creation to close",
        "cycle_s": "seconds from first contact (lead, deal or activity) to close",
        "touches_to_close": "contact activities on a won deal or its lead before it was won "
                            "(NULL unless won)",
        "win_probability": "share of closed deals that entered the deal's stage and were won; "
                           "else the deal's probability; else the pipeline's win rate",
        "weighted_amount": "amount_rc × win_probability",
    },
    "activities": {},
    "accounts": {},
    "revenue": {
        "amount_rc": "amount in the reporting currency (fx_rates by date)",
        "cost_rc": "cost of goods in the reporting currency",
        "margin_rc": "amount_rc − cost_rc (unknown cost counts as 0)",
    },
    "spend": {"amount_rc": "amount in the reporting currency (fx_rates by date)"},
    "forecasts": {
        "amount_rc": "forecast amount in the reporting currency",
        "is_latest": "true for the last forecast made for its rep/team, category and period",
        "actual_rc": "won deal revenue of the forecast's rep (or team, or company) in its period",
        "error_rc": "amount_rc − actual_rc",
        "abs_error_rc": "|amount_rc − actual_rc|",
    },
    "market": {},
}

# The fact views KPIs are defined on: one per entity of the contract above.
VIEWS = tuple(DERIVED_COLUMNS)
# The derived money in the reporting currency, per view: floats (amounts times
# rates), added up as decimals (``engine.money``).
REPORTING_MONEY: dict[str, frozenset[str]] = {
    view: frozenset(c for c in columns if c.endswith("_rc") or c == "weighted_amount")
    for view, columns in DERIVED_COLUMNS.items()
}


def view_columns(view: str) -> set[str]:
    """Every column a KPI may name on ``view``: stored, the source, and derived."""
    return {*ENTITIES[view].column_names, "datasource", *DERIVED_COLUMNS[view]}
