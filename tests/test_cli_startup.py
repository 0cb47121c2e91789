"""A fast CLI: what starting a command imports, compiled SQL kept between processes,
parameters bound by the database, and the few checks that need a real process.

The company in ``small_company`` is counted by hand: 3 reps in 3 teams (one
team's name has a quote and a dollar sign), 6 leads.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from babel.messages.pofile import read_po

from saleskpi.domain.i18n import read_translations
from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.engine.compile import Compiled, CompiledSqlFiles
from saleskpi.service.core import SalesKpiService
from saleskpi.surfaces.cli.app import app
from saleskpi.surfaces.cli.commands import COMMAND_MODULES, register
from saleskpi.surfaces.cli.main import command_name
from tests.conftest import SRC_DIR, CliResult

ODD_TEAM = "O'Brien $Team"
REPS = f"""id,name,team
r1,Ann,"{ODD_TEAM}"
r2,Bob,North
r3,Cid,South
"""
LEADS = """id,created_at,rep_id,source
L1,2024-01-10 10:00:00,r1,web
L2,2024-02-01 10:00:00,r1,ads
L3,2024-01-15 10:00:00,r2,web
L4,2024-01-20 10:00:00,r2,web
L5,2024-01-05 10:00:00,r3,ads
L6,2024-03-01 10:00:00,r3,web
"""
# Importing these means the start-up pays for them; the CLI's --help and a cached
# scorecard must not.
HEAVY = ("ibis", "sqlglot", "pandas", "pyarrow", "sqlalchemy", "alembic", "fastapi",
         "pydantic_settings", "babel")


@pytest.fixture(scope="module")
def small_company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    data = root / "data"
    data.mkdir()
    (data / "reps.csv").write_text(REPS, encoding="utf-8")
    (data / "leads.csv").write_text(LEADS, encoding="utf-8")
    workspace = root / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="UTC", currency="USD")
    report = SalesKpiService(Settings(workspace=workspace)).import_path(
        data, mapping=None, source=None, dry_run=False)
    assert report.ok, report.errors
    return workspace


def leads(workspace: Path, **query: Any) -> dict[tuple[str | None, ...], float | None]:
    service = SalesKpiService(Settings(workspace=workspace))
    card = service.scorecard(KpiQuery(("leads",), **query))
    return {tuple(r.keys.values()): r.values["leads"].value for r in card.rows}


def stored_sql(workspace: Path) -> list[str]:
    """The SQL texts the workspace keeps (cache/sql/<code version>/<key>.json)."""
    files = (workspace / "cache" / "sql").glob("*/*.json")
    return [json.loads(f.read_text(encoding="utf-8"))["sql"] for f in files]


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SALESKPI_LANG="en")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC_DIR), env.get("PYTHONPATH", ""))
                                        if p)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          encoding="utf-8", env=env, timeout=300)


def cli_script(report: str, *, before: str = "", after: str = "") -> str:
    """Python that runs the CLI as ``saleskpi ARGS`` would (``before`` first), then
    ``after``, and prints ``report`` (an expression of a dict; ``code`` is the exit
    code) as JSON on stderr."""
    return f"""
import json, sys
{before}
from saleskpi.surfaces.cli.main import main
sys.argv = ["saleskpi", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
{after}
print(json.dumps({report}), file=sys.stderr)
"""


# Runs the CLI, then prints which heavy modules it imported.
RUN_AND_LIST = cli_script(f'{{"exit": code, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}')


def imported(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(result.stderr.strip().splitlines()[-1])
    return found


# -- parameters ----------------------------------------------------------------------
def test_filter_values_are_bound_not_spliced_into_sql(small_company: Path) -> None:
    assert leads(small_company, where=(("team", (ODD_TEAM,)),)) == {(): 2}  # L1 L2
    sql = stored_sql(small_company)
    assert any("$f0_0" in s for s in sql)
    assert not any("O'Brien" in s or "__saleskpi_param" in s for s in sql)


def test_dates_are_parameters_too(small_company: Path) -> None:
    import datetime as dt

    january = leads(small_company, start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 31))
    assert january == {(): 4}  # L1 L3 L4 L5
    february = leads(small_company, start=dt.date(2024, 2, 1), end=dt.date(2024, 2, 29))
    assert february == {(): 1}  # L2
    assert any("$start" in s and "$end" in s for s in stored_sql(small_company))


def test_two_values_of_a_filter_make_one_total_not_a_row_each(small_company: Path) -> None:
    where = (("team", ("North", "South")),)
    assert leads(small_company, where=where) == {(): 4}  # L3 L4 L5 L6
    assert leads(small_company, by=("rep",), where=where) == {("r2",): 2, ("r3",): 2}
    assert leads(small_company, by=("source",), where=where) == {("web",): 3, ("ads",): 1}
    by_month = leads(small_company, period="month", where=where)
    assert by_month == {("2024-01-01",): 3, ("2024-03-01",): 1}


# -- one open store for a command's reads --------------------------------------------
def test_a_question_checked_then_computed_opens_the_store_once(
        small_company: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import saleskpi.service.core as core_module
    from saleskpi.store.backend import open_store
    from saleskpi.views.base import LOCAL
    from saleskpi.views.scorecard import ScorecardParams, scorecard_card

    opened: list[bool] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append(bool(kwargs.get("read_only")))
        return open_store(*args, **kwargs)

    monkeypatch.setattr(core_module, "open_store", counted)
    # The filter's team is checked against the data (a read), then the scorecard computed.
    params = ScorecardParams(kpis=["leads"], by=["team"], period="month",
                             where=["team=North"])
    service = SalesKpiService(Settings(workspace=small_company, cache_seconds=0))
    with service.sharing_reads():
        card = scorecard_card(service, LOCAL, params, totals=False)
    assert opened == [True]
    counted_leads = {(r.keys["team"], r.keys["period"]): r.values["leads"].value
                     for r in card.rows if r.values["leads"].value}
    assert counted_leads == {("North", "2024-01-01"): 2}  # L3 L4
    # Closed at the end of the block: this process may open the file to write.
    with open_store(Settings(workspace=small_company)):
        pass
    opened.clear()
    again = scorecard_card(SalesKpiService(Settings(workspace=small_company, cache_seconds=0)),
                           LOCAL, params, totals=False)
    assert opened == [True, True]  # without the block: the check's read, the computation's
    assert [r.values["leads"].value for r in again.rows] == \
        [r.values["leads"].value for r in card.rows]


# -- the workspace's file of compiled SQL ---------------------------------------------
def test_a_new_process_reads_the_files_and_a_damaged_one_is_compiled_again(
        small_company: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import saleskpi.engine.scorecard as scorecard_module
    from saleskpi.engine.compile import SqlCache

    by_team = {("North",): 2, (ODD_TEAM,): 2, ("South",): 2}

    def new_process() -> SqlCache:
        """What a new process starts with: no compiled SQL in memory."""
        memory = SqlCache()
        monkeypatch.setattr(scorecard_module, "_CACHE", memory)
        return memory

    memory = new_process()
    assert leads(small_company, by=("team",)) == by_team
    # Two shapes (the rows by team, the total), compiled or read.
    assert memory.misses == 2
    memory = new_process()
    assert leads(small_company, by=("team",)) == by_team
    assert (memory.misses, memory.file_hits) == (2, 2)  # read, not compiled
    for stored in (small_company / "cache" / "sql").glob("*/*.json"):
        stored.write_text("{not json", encoding="utf-8")
    memory = new_process()
    assert leads(small_company, by=("team",)) == by_team
    assert (memory.misses, memory.file_hits) == (2, 0)  # compiled again, and written
    memory = new_process()
    assert leads(small_company, by=("team",)) == by_team
    assert (memory.misses, memory.file_hits) == (2, 2)


def test_other_versions_files_are_not_read_and_go_when_it_writes(tmp_path: Path) -> None:
    files = CompiledSqlFiles(tmp_path)
    old = tmp_path / "an-older-version"
    old.mkdir()
    (old / "x.json").write_text(json.dumps({"sql": "SELECT 1", "params": [],
                                            "columns": []}), encoding="utf-8")
    assert files.get("x") is None
    files.put("y", Compiled("SELECT 2", ("start",), ("m0",)))
    assert files.get("y") == Compiled("SELECT 2", ("start",), ("m0",))
    assert not old.exists()


def test_a_workspace_it_cannot_write_still_answers(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("", encoding="utf-8")
    files = CompiledSqlFiles(blocked / "sql")
    files.put("x", Compiled("SELECT 1", (), ()))  # no error: it is only a cache
    assert files.get("x") is None


@pytest.mark.process
def test_a_second_process_runs_cached_sql_without_ibis_or_pandas(small_company: Path) -> None:
    args = ("--workspace", str(small_company), "kpi", "leads", "--by", "team", "--period",
            "month", "--format", "json")
    first = run_python(RUN_AND_LIST, *args)
    second = run_python(RUN_AND_LIST, *args)
    assert imported(first)["exit"] == 0, first.stderr
    assert imported(second) == {"exit": 0, "heavy": []}, second.stderr
    assert json.loads(second.stdout) == json.loads(first.stdout)
    rows = {(r["team"], r["period"]): r["leads"]["value"]
            for r in json.loads(second.stdout)["rows"]}
    assert rows[(ODD_TEAM, "2024-02-01")] == 1 and rows[("South", "2024-03-01")] == 1


# Runs the CLI, then lists the modules among NAMES (its first argument) it imported.
RUN_AND_LIST_ANY = cli_script(
    '{"exit": code, "found": found}', before="names = json.loads(sys.argv.pop(1))",
    after='found = sorted(m for m in sys.modules if m in names or m.split(".")[0] in names)')
COMMANDS = "saleskpi.surfaces.cli.commands"


@pytest.mark.process
def test_a_repeated_csv_scorecard_imports_only_what_it_needs(small_company: Path) -> None:
    """`saleskpi kpi ... --format csv` once its SQL is compiled (benchmarks/cli_vs_sql.py):
    no Ibis, pandas, SQLAlchemy; no Rich (CSV is written as it is); no other command's
    module; the figures as counted by hand."""
    args = ("--workspace", str(small_company), "kpi", "leads", "--by", "team", "--period",
            "month", "--format", "csv")
    not_wanted = [*HEAVY, "rich", "saleskpi.surfaces.cli.output",
                  *(f"{COMMANDS}.{m}" for m in set(COMMAND_MODULES.values()) - {"kpis"})]
    run_python(RUN_AND_LIST, *args)  # compiles and keeps the SQL, if no test did yet
    repeated = run_python(RUN_AND_LIST_ANY, json.dumps(not_wanted), *args)
    assert imported(repeated) == {"exit": 0, "found": []}, repeated.stderr
    lines = repeated.stdout.splitlines()
    assert lines[0] == "team,period,leads"
    assert f"{ODD_TEAM},2024-02-01,1" in lines and "South,2024-03-01,1" in lines
    assert "North,2024-01-01,2" in lines


# Runs the CLI, noting the threads it starts; then checks that the command left the
# store's file closed (this process can open it to write) and no thread running.
RUN_AND_WATCH_THREADS = cli_script(
    '{"exit": code, "ahead": started.count("saleskpi-open-ahead"), "alive": alive}',
    before="""
import threading
from pathlib import Path
import duckdb
started = []
start = threading.Thread.start
def noted(thread):
    started.append(thread.name)
    start(thread)
threading.Thread.start = noted
""", after="""
duckdb.connect(str(Path(sys.argv[2]) / "analytics.duckdb")).close()
alive = [t.name for t in threading.enumerate() if t.name.startswith("saleskpi")]
""")


@pytest.mark.process
def test_a_command_that_reads_opens_the_store_while_it_starts(small_company: Path) -> None:
    """The store's open overlaps the command's imports (service/reads_ahead.py): only
    commands that read do it, and the file is let go when the command is done."""
    ws = str(small_company)
    kpi = run_python(RUN_AND_WATCH_THREADS, "--workspace", ws, "kpi", "leads", "--by", "team",
                     "--format", "csv", "--range", "all")
    assert imported(kpi) == {"exit": 0, "ahead": 1, "alive": []}, kpi.stderr
    assert "North,2" in kpi.stdout.splitlines()  # L3 L4
    for args in (("reps", "--format", "json"), ("kpi", "leads", "--help"),
                 ("settings",)):
        other = run_python(RUN_AND_WATCH_THREADS, "--workspace", ws, *args)
        assert imported(other) == {"exit": 0, "ahead": 0, "alive": []}, (args, other.stderr)


@pytest.mark.process
def test_help_still_lists_every_command(tmp_path: Path) -> None:
    for args in (("--help",), ("--workspace", str(tmp_path), "--help", "kpi")):
        result = run_python(RUN_AND_LIST, *args)
        assert imported(result)["exit"] == 0, result.stderr
        listed = result.stdout
        for name in ("kpi", "leaderboard", "alerts", "import", "verify", "user"):
            assert f" {name} " in listed, (args, name)


def test_the_command_table_names_every_command_and_its_module() -> None:
    """COMMAND_MODULES, by which a process imports only its command's module."""
    register()  # every module

    def module_of(group: typer.Typer) -> set[str]:
        found = {c.callback.__module__ for c in group.registered_commands if c.callback}
        for sub in group.registered_groups:
            assert sub.typer_instance is not None
            found |= module_of(sub.typer_instance)
        return found

    registered: dict[str, set[str]] = {}
    for command in app.registered_commands:
        assert command.name and command.callback
        registered[command.name] = {command.callback.__module__}
    for group in app.registered_groups:
        assert group.name and group.typer_instance is not None
        registered[group.name] = module_of(group.typer_instance)
    assert {name: {f"{COMMANDS}.{module}"} for name, module in COMMAND_MODULES.items()} \
        == registered


@pytest.mark.parametrize(("args", "name"), [
    (["kpi", "calls"], "kpi"),
    (["--workspace", "kpi", "kpis"], "kpis"),  # a workspace folder named kpi
    (["-w", "ws", "--lang", "ru", "leaderboard", "--help"], "leaderboard"),
    (["--workspace=ws", "alerts", "list"], "alerts"),
    (["--help", "kpi"], None),  # the main help: every command
    (["--workspace", "ws"], None),
    ([], None),
])
def test_the_command_a_process_runs(args: list[str], name: str | None) -> None:
    assert command_name(args) == name


# -- settings and translations, read without pydantic-settings and Babel ------------
def test_settings_priority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper().startswith("SALESKPI_"):
            monkeypatch.delenv(name)
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            currency="uah")
    (tmp_path / ".env").write_text(
        f"SALESKPI_WORKSPACE={workspace}\nsaleskpi_currency=eur\nSALESKPI_CACHE_SECONDS=5\n"
        "OTHER=1\n", encoding="utf-8")
    found = Settings()  # workspace from .env, zone from its settings.yaml
    assert (found.workspace, found.timezone, found.currency, found.cache_seconds) == (
        workspace, "Europe/Kyiv", "EUR", 5)
    monkeypatch.setenv("SALESKPI_CURRENCY", "gbp")
    assert Settings().currency == "GBP"  # the environment over .env
    assert Settings(currency="pln").currency == "PLN"  # code over the environment
    assert Settings(_env_file=None, workspace=tmp_path / "empty").currency == "GBP"
    assert Settings(_env_file=None, workspace=tmp_path / "empty").timezone == "UTC"


def test_settings_problems_are_one_line_per_setting(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from saleskpi.domain.settings import settings_problem

    with pytest.raises(ValidationError) as caught:
        Settings(workspace=tmp_path, timezone="Mars/Olympus", cache_seconds=-1)
    assert settings_problem(caught.value) == (
        "timezone: unknown time zone 'Mars/Olympus'; use an IANA name like Europe/Kyiv; "
        "cache_seconds: Input should be greater than or equal to 0")


PO_SAMPLE = r'''
#, fuzzy
msgid ""
msgstr "Language: ru\n"

#, fuzzy
msgid "guessed"
msgstr "догадка"

#, python-brace-format
msgid "a \"quoted\" {name}\t"
"and a second line\n"
msgstr "«{name}»\t"
"и вторая строка\n"

msgid "one"
msgid_plural "many"
msgstr[0] "один"
msgstr[1] "много"

msgid "untranslated"
msgstr ""

msgctxt "menu"
msgid "Open"
msgstr "Открыть"
#~ msgid "gone"
#~ msgstr "ушло"
'''


@pytest.mark.parametrize("lang", ["ru", "uk", "sample"])
def test_po_reader_reads_what_babel_reads(lang: str) -> None:
    if lang == "sample":
        text = PO_SAMPLE
    else:
        path = SRC_DIR / "saleskpi" / "locales" / lang / "LC_MESSAGES" / "saleskpi.po"
        text = path.read_text(encoding="utf-8")
    catalog = read_po(io.BytesIO(text.encode("utf-8")), locale="ru")
    expected = {str(m.id): str(m.string) for m in catalog
                if m.id and m.string and isinstance(m.id, str) and not m.fuzzy}
    assert read_translations(text) == expected
    if lang == "sample":
        assert set(expected) == {'a "quoted" {name}\tand a second line\n', "Open"}


# -- as a process: start-up, exit codes, the demo ----------------------------------------
def test_help_starts_without_heavy_imports(run_cli_process: Any, tmp_path: Path) -> None:
    result: CliResult = run_cli_process(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "Example: saleskpi demo" in result.stdout
    listed = imported(run_python(RUN_AND_LIST, "--help"))
    assert listed == {"exit": 0, "heavy": []}
    typo = imported(run_python(RUN_AND_LIST, "kpii"))
    assert typo == {"exit": 2, "heavy": []}


def test_version_is_the_projects_and_needs_no_workspace(run_cli_process: Any,
                                                        tmp_path: Path) -> None:
    """``saleskpi --version`` prints the version pyproject.toml declares, at once: no
    workspace is made or needed, nothing heavy imported."""
    declared = tomllib.loads((SRC_DIR.parent / "pyproject.toml").read_text("utf-8"))
    missing = tmp_path / "no-such-workspace"
    result: CliResult = run_cli_process(missing, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"saleskpi {declared['project']['version']}\n"
    assert not missing.exists()
    assert imported(run_python(RUN_AND_LIST, "--version")) == {"exit": 0, "heavy": []}


@pytest.mark.process
def test_importing_the_cli_imports_nothing_heavy() -> None:
    result = run_python("import sys, json; import saleskpi.surfaces.cli.main; "
                        f"print(json.dumps([m for m in {HEAVY!r} + ('duckdb', 'pydantic') "
                        "if m in sys.modules]))")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.fixture(scope="module")
def demo_workspace(run_cli_process: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = tmp_path_factory.mktemp("demo") / "ws"
    result = run_cli_process(workspace, "demo", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Demo company ready" in result.stdout
    return workspace


def test_demo_then_kpi_json_as_processes(run_cli_process: Any, run_cli: Any,
                                         demo_workspace: Path) -> None:
    args = ("kpi", "win_rate", "revenue", "--by", "team", "--format", "json")
    as_process: CliResult = run_cli_process(demo_workspace, *args)
    assert as_process.returncode == 0, as_process.stderr
    in_process: CliResult = run_cli(demo_workspace, *args)
    assert as_process.json() == in_process.json()
    assert {r["team"] for r in as_process.json()["rows"]} == {"London", "Київ", "Москва"}


def test_an_error_exits_with_its_code_and_no_traceback(run_cli_process: Any,
                                                       demo_workspace: Path) -> None:
    result: CliResult = run_cli_process(demo_workspace, "kpi", "win_rat")
    assert result.returncode == 2
    assert result.stderr.startswith("Error: unknown KPI 'win_rat'")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.process
def test_the_funnel_for_programs_does_not_import_rich(small_company: Path) -> None:
    """`saleskpi funnel --format csv|json` writes its text as it is: no Rich console
    (once the funnel's SQL is compiled: Ibis, which compiles it, imports Rich)."""
    for fmt in ("csv", "json"):
        args = ("--workspace", str(small_company), "funnel", "--format", fmt)
        run_python(RUN_AND_LIST, *args)  # compiles and keeps the SQL, if no test did yet
        result = run_python(RUN_AND_LIST_ANY, json.dumps(["rich"]), *args)
        assert imported(result) == {"exit": 0, "found": []}, result.stderr
    # The company has no stage history: the header alone.
    assert result.stdout.strip().startswith("{")
    csv_result = run_python(RUN_AND_LIST, *args[:-1], "csv")
    assert csv_result.stdout.splitlines()[0].startswith("pipeline,rep,rep_name,stage,")
