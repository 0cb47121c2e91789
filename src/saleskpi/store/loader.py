"""Write validated tables into the store: check references, count, upsert.

The whole import is one journaled write (``store/journal.py``): the facts in one
DuckDB transaction, the targets and the import-log entry in SQLite, and either
all of it is stored or none of it, even if the process is killed in between.
Rows are keyed by (source, key), so importing the same data again finds every
row unchanged and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from saleskpi.domain.i18n import _
from saleskpi.domain.reports import EntityCounts, ImportRejected, ImportReport, Progress
from saleskpi.domain.schema import ENTITIES, LOAD_ORDER, Entity
from saleskpi.domain.tables import TypedTable
from saleskpi.store import rollups
from saleskpi.store.facts import FactStore
from saleskpi.store.first_contacts import ACTIVITY_COLUMNS, refresh_first_contacts
from saleskpi.store.journal import StateChanges, journaled, log_entry

if TYPE_CHECKING:
    import pandas as pd

    from saleskpi.store.target_import import TargetImport

# A reference to an unknown rep would make a KPI row nobody owns: refuse it.
# Other dangling references (an account or product missing from the export)
# are common in real exports and only reported.
STRICT_REFERENCES = {"reps"}
EXAMPLES = 5


# Targets are plans, not facts: staged and checked here like every entity, but
# stored in the transactional store (SQLite) by saleskpi.store.target_import.
ROUTED_TO_STATE = "targets"


def frames_to_tables(frames: dict[str, pd.DataFrame]) -> list[TypedTable]:
    """Typed frames made in code (demo, connectors) as tables the loader takes."""
    tables = []
    for name, frame in frames.items():
        entity = ENTITIES[name]
        out = frame.copy()
        extra = [c for c in out.columns if c not in entity.column_names and c != "custom"]
        if extra and "custom" not in out.columns:
            records = out[extra].to_dict(orient="records")
            out["custom"] = [
                json.dumps({k: v for k, v in r.items() if v is not None and v == v},
                           ensure_ascii=False, default=str)
                for r in records
            ]
        elif "custom" not in out.columns:
            out["custom"] = None
        for column in entity.column_names:
            if column not in out.columns:
                out[column] = None
        out["_row"] = range(2, len(out) + 2)
        tables.append(TypedTable(name, name, out[[*entity.column_names, "custom", "_row"]]))
    return tables


def _key_match(entity: Entity, left: str, right: str) -> str:
    # IS NOT DISTINCT FROM: keys such as a company-wide target's rep_id are NULL.
    parts = [f'{left}."{k}" IS NOT DISTINCT FROM {right}."{k}"' for k in entity.key]
    return " AND ".join([f"{left}.datasource = {right}.datasource", *parts])


def _row_differs(entity: Entity, left: str, right: str, dialect: str) -> str:
    cols = [*entity.column_names, "custom"]
    if dialect == "duckdb":
        # Column by column: DuckDB builds no two structs per row (a third of the
        # comparison's time when re-importing 2M unchanged activities).
        return "(" + " OR ".join(f'{left}."{c}" IS DISTINCT FROM {right}."{c}"'
                                 for c in cols) + ")"
    lhs = ", ".join(f'{left}."{c}"' for c in cols)
    rhs = ", ".join(f'{right}."{c}"' for c in cols)
    return f"row({lhs}) IS DISTINCT FROM row({rhs})"


class Loader:
    """One import run against one store."""

    def __init__(self, store: FactStore, source: str, report: ImportReport,
                 progress: Progress | None = None) -> None:
        self.store = store
        self.con = store.con
        self.dialect = store.dialect
        self.source = source
        self.report = report
        self.progress = progress or (lambda _msg: None)
        self.staged: list[str] = []
        self._targets: TargetImport | None = None
        self.logged = False  # the import log has this run (written with its facts)
        self._rollups: rollups.Specs = {}

    def run(self, tables: Iterable[TypedTable], *, dry_run: bool,
            log_origin: str | None = None) -> ImportReport:
        """Check, count and (unless ``dry_run``) write, as one journaled write.

        ``log_origin``: record the import in the import log, in the same write (then
        ``logged`` is True); a sync's batches are not logged.
        """
        try:
            if self.prepare(tables) and not dry_run:
                self.progress(_("writing"))
                changes = StateChanges(
                    log=log_entry(log_origin, self.report) if log_origin else None)
                with journaled(self.con, self.store.path, "import", self.source, changes):
                    self.write_staged(changes)
                self.logged = log_origin is not None
        finally:
            self.drop_staged()
        return self.report

    def prepare(self, tables: Iterable[TypedTable]) -> bool:
        """Stage, check and count; False (the report says why) if the import is refused."""
        by_entity: dict[str, list[TypedTable]] = {}
        for table in tables:
            by_entity.setdefault(table.entity, []).append(table)
        try:
            for name in LOAD_ORDER:
                if name in by_entity:
                    self._stage(ENTITIES[name], by_entity[name])
            if ROUTED_TO_STATE in self.staged:
                self._routed().check()
            if not self.report.ok:
                raise ImportRejected
            for name in self.staged:
                self._check_references(ENTITIES[name])
            self._report_gaps()
            if not self.report.ok:
                raise ImportRejected
            for name in self.staged:
                self.report.entities[name] = (
                    self._routed().count() if name == ROUTED_TO_STATE
                    else self._count(ENTITIES[name]))
        except ImportRejected:
            for name in self.staged:
                self.report.entities.setdefault(name, EntityCounts()).rejected = (
                    self._staged_count(name)
                )
            return False
        return True

    def write_staged(self, changes: StateChanges) -> None:
        """Write the staged facts on the open transaction; targets go to ``changes``
        (SQLite's side of the same journaled write)."""
        self._rollups = rollups.kept(self.store)
        for name in self.staged:
            if name == ROUTED_TO_STATE:
                changes.targets_source = self.source
                changes.targets = self._routed().journal_rows()
            else:
                self._write(ENTITIES[name])
        # In this transaction: a failed import leaves the rollups as they were.
        rollups.refresh(self.store, self._rollups)

    def drop_staged(self) -> None:
        for name in self.staged:
            self.con.execute(f'DROP TABLE IF EXISTS "stage_{name}"')
        self.staged = []

    def _routed(self) -> TargetImport:
        if self._targets is None:
            from saleskpi.store.target_import import TargetImport

            self._targets = TargetImport(self.con, self.store.path, self.source, self.report)
        return self._targets

    # -- staging -------------------------------------------------------------
    def _stage(self, entity: Entity, tables: list[TypedTable]) -> None:
        self.progress(_("checking {entity}", entity=entity.name))
        if len(tables) == 1:
            # One file (the usual case): a fast-path file's rows stay in Arrow.
            self.store.stage_rows(f"stage_{entity.name}", tables[0], self.source)
        else:
            import pandas as pd  # only here: slow to import, and one file needs none

            parts = []
            for table in tables:
                part = table.to_frame().copy()
                part["_file"] = table.name
                parts.append(part)
            frame = pd.concat(parts, ignore_index=True)
            self.store.stage_frame(f"stage_{entity.name}", entity, frame, self.source)
        self.staged.append(entity.name)
        self._check_contract(entity)
        if len(tables) > 1:
            self._check_cross_file_duplicates(entity)

    def _staged_count(self, name: str) -> int:
        row = self.con.execute(f'SELECT count(*) FROM "stage_{name}"').fetchone()
        return int(row[0]) if row else 0

    def _check_contract(self, entity: Entity) -> None:
        """Required values, allowed values and closed deals' dates, for rows made in code.

        Files are checked cell by cell before this (validate.py); rows from the demo
        or a CRM connector arrive typed, and are held to the same contract here.
        """
        table = f'"stage_{entity.name}"'
        checks: list[tuple[str, str, str]] = []
        for column in entity.columns:
            if column.required:
                checks.append((column.name, f'"{column.name}" IS NULL',
                               _("{column} is empty but required", column=column.name)))
            if column.choices:
                allowed = ", ".join(f"'{c}'" for c in column.choices)
                checks.append((column.name,
                               f'"{column.name}" IS NOT NULL AND lower("{column.name}") '
                               f"NOT IN ({allowed})",
                               _("not one of the allowed values: {values}",
                                 values=", ".join(column.choices))))
        if entity.name == "deals":
            checks.append(("closed_at", "status IN ('won', 'lost') AND closed_at IS NULL",
                           _("a won or lost deal needs closed_at")))
        for name, condition, message in checks:
            rows = self.con.execute(
                f"SELECT _file, _row FROM {table} WHERE {condition} ORDER BY _row LIMIT 5"
            ).fetchall()
            for file, row in rows:
                self.report.error(file, int(row), name, message)

    def _check_cross_file_duplicates(self, entity: Entity) -> None:
        keys = ", ".join(f'"{k}"' for k in entity.key)
        rows = self.con.execute(
            f"""SELECT _file, _row, first_file, first_row FROM (
                  SELECT _file, _row,
                         first_value(_file) OVER w AS first_file,
                         first_value(_row) OVER w AS first_row,
                         row_number() OVER w AS n
                  FROM "stage_{entity.name}"
                  WINDOW w AS (PARTITION BY {keys} ORDER BY _file, _row)) AS d
                WHERE n > 1 ORDER BY _file, _row LIMIT 10"""
        ).fetchall()
        for file, row, first_file, first_row in rows:
            self.report.error(
                file, int(row), ",".join(entity.key),
                _("the same record is already in {file}, row {row}", file=first_file,
                  row=first_row),
                _("Each record must appear once; remove or merge the duplicate rows."),
            )

    # -- checks ----------------------------------------------------------------
    def _known_ids(self, target: str, among: str | None = None) -> str:
        """Ids of ``target`` staged or stored; ``among``: only those this query yields.

        ClickHouse builds the set of a ``NOT IN`` in memory: there the stored ids are
        only those the staged rows name (the primary key finds them), not every id of
        the source (millions, read through ``FINAL`` for each import).
        """
        stored = f'SELECT id FROM "{target}" WHERE datasource = $source'
        if among is not None and self.dialect.name == "clickhouse":
            stored += f" AND id IN ({among})"
        if target in self.staged:
            return f'SELECT id FROM "stage_{target}" UNION ALL {stored}'
        return stored

    def _check_references(self, entity: Entity) -> None:
        for column in entity.columns:
            if column.references is None:
                continue
            target = column.references
            dangling = f"""FROM "stage_{entity.name}" s
                WHERE s."{column.name}" IS NOT NULL
                  AND s."{column.name}" NOT IN ({self._known_ids(
                      target, among=f'SELECT "{column.name}" FROM "stage_{entity.name}"')})"""
            params = {"source": self.source}
            if target in STRICT_REFERENCES:
                rows = self.con.execute(
                    f'SELECT s._file, s._row, s."{column.name}" {dangling} '
                    f"ORDER BY s._file, s._row LIMIT 10", params
                ).fetchall()
                for file, row, value in rows:
                    self.report.error(
                        file, int(row), column.name,
                        _("{column} {value!r} is not a known rep", column=column.name,
                          value=value),
                        _("Add the rep to reps.csv (or the reps sheet) in this import, "
                          "or import the reps first."),
                    )
                continue
            examples = self.dialect.first_values(f's."{column.name}"', EXAMPLES,
                                                 distinct=True)
            count_row = self.con.execute(f"SELECT count(*), {examples} {dangling}",
                                         params).fetchone()
            if count_row and count_row[0]:
                self.report.warn(
                    "unknown_reference",
                    _("{entity}.{column}: {count} rows refer to {target} that are not in "
                      "the data; kept, but they will show no {target} details",
                      entity=entity.name, column=column.name, count=count_row[0],
                      target=target),
                    count=int(count_row[0]), column=column.name,
                    examples=[str(v) for v in count_row[1]],
                )

    def _report_gaps(self) -> None:
        """Quirks of real exports that change what some KPIs can count."""
        if "deals" in self.staged:
            without_created, without_account = self.con.execute(
                'SELECT count(*) FILTER (WHERE created_at IS NULL), '
                'count(*) FILTER (WHERE account_id IS NULL) FROM "stage_deals"'
            ).fetchone() or (0, 0)
            if without_created:
                self.report.warn(
                    "deal_without_created_at",
                    _("{count} deals have no created_at: they count in pipeline, won and "
                      "lost figures, but not in KPIs that need the creation date "
                      "(time to close, lead processing)", count=without_created),
                    count=int(without_created), column="created_at",
                )
            if without_account:
                self.report.warn(
                    "deal_without_account",
                    _("{count} deals have no account: they show no segment or sector",
                      count=without_account),
                    count=int(without_account), column="account_id",
                )
            backwards = self.con.execute(
                f"SELECT count(*), {self.dialect.first_values('id', EXAMPLES, order='id')} "
                'FROM "stage_deals" WHERE closed_at < created_at').fetchone()
            if backwards and backwards[0]:
                # A date typed the wrong way round, or a deal re-created in the CRM:
                # kept as given, but its time to close would be negative.
                self.report.warn(
                    "deal_closed_before_created",
                    _("Deals closed before they were created: {count} (e.g. {examples}); their "
                      "time to close counts as negative: check these dates in the CRM",
                      count=backwards[0], examples=", ".join(map(str, backwards[1]))),
                    count=int(backwards[0]), column="closed_at",
                    examples=[str(v) for v in backwards[1]],
                )
        if "reps" in self.staged or "deals" in self.staged:
            deals = self._known_ids_of("deals", "rep_id")
            row = self.con.execute(
                f"SELECT count(*), {self.dialect.first_values('id', EXAMPLES, order='id')} "
                f"FROM (SELECT DISTINCT id FROM ({self._known_ids('reps')}) k) r "
                f"WHERE id NOT IN ({deals})",
                {"source": self.source},
            ).fetchone()
            if row and row[0]:
                self.report.warn(
                    "rep_without_deals",
                    _("{count} reps have no deals (shown with zeros in the scorecard)",
                      count=row[0]),
                    count=int(row[0]), examples=[str(v) for v in row[1]],
                )

    def _known_ids_of(self, entity: str, column: str) -> str:
        stored = (f'SELECT "{column}" FROM "{entity}" WHERE datasource = $source '
                  f'AND "{column}" IS NOT NULL')
        if entity in self.staged:
            return f'SELECT "{column}" FROM "stage_{entity}" UNION ALL {stored}'
        return stored

    # -- counting and writing -------------------------------------------------
    def _stored(self, entity: Entity) -> str:
        """The stored rows the staged ones are matched with.

        ClickHouse builds a join's right side in memory: there it is only the stored
        rows of this source whose first key column the staging table holds (found by
        the primary key, ``(datasource, key)``), not the whole table read through
        ``FINAL``, whose size grows with every import (docs/capacity.md).
        """
        first = entity.key[0]
        required = next(c.required for c in entity.columns if c.name == first)
        if self.dialect.name != "clickhouse" or not required:
            return f'"{entity.name}"'
        return (f'(SELECT * FROM "{entity.name}" WHERE datasource = $source AND "{first}" IN '
                f'(SELECT "{first}" FROM "stage_{entity.name}"))')

    def _count(self, entity: Entity) -> EntityCounts:
        if self.dialect.name != "clickhouse" and not self.con.execute(
                f'SELECT 1 FROM "{entity.name}" WHERE datasource = $source LIMIT 1',
                {"source": self.source}).fetchall():
            # The source's first import of these rows: every staged row is new. (The
            # join below would say so after reading them all: 0.4 s at 2M activities.)
            return EntityCounts(inserted=self._staged_count(entity.name))
        stored = self._stored(entity)
        row = self.con.execute(
            f"""SELECT count(*) FILTER (WHERE t.datasource IS NULL),
                       count(*) FILTER (WHERE t.datasource IS NOT NULL
                                        AND {_row_differs(entity, 's', 't', self.dialect.name)}),
                       count(*) FILTER (WHERE t.datasource IS NOT NULL)
                FROM "stage_{entity.name}" s
                LEFT JOIN {stored} t ON {_key_match(entity, 't', 's')}""",
            {"source": self.source} if "$source" in stored else None,
        ).fetchone() or (0, 0, 0)
        # Each stored row matched is updated or unchanged: compared once, not twice.
        return EntityCounts(inserted=row[0], updated=row[1], unchanged=row[2] - row[1])

    def _write(self, entity: Entity) -> None:
        counts = self.report.entities[entity.name]
        if not counts.inserted and not counts.updated:
            return
        cols = ", ".join(f'"{c}"' for c in (*entity.column_names, "datasource", "custom"))
        if not counts.updated and not counts.unchanged:
            self._insert_all(entity, cols)
            return
        # A replaced activity may have been its old lead's or deal's first contact:
        # keep what the stored row was (the join is made anyway, this costs no scan).
        was = "".join(f', t."{c}" AS "was_{c}"' for c in ACTIVITY_COLUMNS) \
            if entity.name == "activities" else ""
        changed = f"""SELECT s.*{was} FROM "stage_{entity.name}" s
                LEFT JOIN {self._stored(entity)} t ON {_key_match(entity, 't', 's')}
                WHERE t.datasource IS NULL
                   OR {_row_differs(entity, 's', 't', self.dialect.name)}"""
        for statement in self.dialect.temp_table_as(f"changed_{entity.name}", changed):
            self.con.execute(statement, {"source": self.source} if "$source" in statement
                             else None)
        if self.dialect.name == "clickhouse":
            # Appended as the newest versions; first contacts are views there.
            from saleskpi.store.clickhouse import ClickHouseStore

            assert isinstance(self.store, ClickHouseStore)
            self.store.append_versions(entity, f'"changed_{entity.name}"')
            self.con.execute(f'DROP TEMPORARY TABLE "changed_{entity.name}"')
            return
        if self._rollups:
            # The days the changed rows leave and those they arrive at, before the write.
            rollups.mark(self.con, self._rollups, entity.name,
                         f'SELECT * FROM "changed_{entity.name}"')
            rollups.mark(self.con, self._rollups, entity.name,
                         f'SELECT t.* FROM "{entity.name}" t JOIN "changed_{entity.name}" s '
                         f"ON {_key_match(entity, 't', 's')}", references=False)
        if self.dialect.name == "postgres":
            self._upsert(entity, cols)
        else:
            if counts.updated:
                self.con.execute(
                    f"""DELETE FROM "{entity.name}" t USING "changed_{entity.name}" s
                        WHERE {_key_match(entity, 't', 's')}"""
                )
            self.con.execute(
                f'INSERT INTO "{entity.name}" ({cols}) SELECT {cols} FROM "changed_{entity.name}"'
            )
        if entity.name == "activities":
            # In this transaction: a failed import leaves first contacts as they were.
            replaced = ", ".join(f'"was_{c}" AS "{c}"' for c in ACTIVITY_COLUMNS)
            refresh_first_contacts(
                self.con,
                removed=f'(SELECT {replaced} FROM "changed_activities" '
                        f'WHERE "was_datasource" IS NOT NULL)',
                added='"changed_activities"', dialect=self.dialect)
        self.con.execute(f'DROP TABLE "changed_{entity.name}"')

    def _insert_all(self, entity: Entity, cols: str) -> None:
        """Every staged row is new (a source's first import): written straight from the
        staging table, without the copy of changed rows that replacing needs."""
        staged = f'"stage_{entity.name}"'
        if self.dialect.name == "clickhouse":
            from saleskpi.store.clickhouse import ClickHouseStore

            assert isinstance(self.store, ClickHouseStore)
            self.store.append_versions(entity, staged)
            return
        if self._rollups:
            # The days the new rows arrive at (and, for new fx rates, the money to convert
            # again), before the write, as for changed rows.
            rollups.mark(self.con, self._rollups, entity.name, f"SELECT * FROM {staged}")
        if entity.name == "activities":
            refresh_first_contacts(self.con, added=staged, dialect=self.dialect)
        if not self.store.adopt_staged(f"stage_{entity.name}", entity):
            self.con.execute(f'INSERT INTO "{entity.name}" ({cols}) SELECT {cols} FROM {staged}')

    def _upsert(self, entity: Entity, cols: str) -> None:
        """PostgreSQL: insert the changed rows, updating those whose key is stored.

        Each table is unique on (datasource, key) (``store/postgres.py``), so one
        statement both adds and replaces.
        """
        key = ", ".join(f'"{k}"' for k in ("datasource", *entity.key))
        updates = ", ".join(f'"{c}" = EXCLUDED."{c}"'
                            for c in (*entity.column_names, "custom") if c not in entity.key)
        self.con.execute(
            f'INSERT INTO "{entity.name}" ({cols}) SELECT {cols} FROM "changed_{entity.name}" '
            f"ON CONFLICT ({key}) DO "
            + (f"UPDATE SET {updates}" if updates else "NOTHING"))
