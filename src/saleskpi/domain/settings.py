"""One settings object for the whole product.

Priority, highest first: values passed in code (CLI options), environment
variables ``SALESKPI_*``, a ``.env`` file in the current directory, the
workspace's ``settings.yaml`` (written by ``saleskpi demo`` or by hand), defaults.

The sources are gathered here rather than by pydantic-settings: importing it took
a quarter of a second, longer than the rest of a CLI command's start.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from saleskpi.domain.backends import BACKENDS, Backend, check_backend_url
from saleskpi.domain.files import private_dir, write_private
from saleskpi.domain.yaml_files import kept_yaml_dir, read_yaml

WORKSPACE_SETTINGS_FILE = "settings.yaml"
ENV_PREFIX = "SALESKPI_"
DEFAULT_WORKSPACE = "saleskpi-data"


def _workspace_yaml(workspace: Path) -> dict[str, Any]:
    """``<workspace>/settings.yaml``; the workspace itself comes from the other sources."""
    path = workspace / WORKSPACE_SETTINGS_FILE
    if not path.is_file():
        return {}
    data = read_yaml(path, keep_in=kept_yaml_dir(workspace)) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of setting: value")
    data.pop("workspace", None)
    data.pop("secret_key", None)  # secrets never live in a file next to the data
    return data


def _prefixed(pairs: Any, names: Any) -> dict[str, Any]:
    """``SALESKPI_<NAME>`` pairs (any case) as {name: value}, for the settings' fields."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        name = str(key).lower()
        if value is not None and name.startswith(ENV_PREFIX.lower()):
            field = name[len(ENV_PREFIX):]
            if field in names:
                found[field] = value
    return found


def _dotenv(path: Path | None, names: Any) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    from dotenv import dotenv_values

    return _prefixed(dotenv_values(path, encoding="utf-8").items(), names)


class Settings(BaseModel):
    """Where the data lives and how numbers are bucketed and shown.

    ``Settings(**values)`` reads the environment, ``.env`` (``_env_file``, None for
    none) and the workspace's settings.yaml under ``values``;
    ``model_validate`` and ``model_copy`` take the values as given.
    """

    # Inputs are never repeated in errors: backend_url holds a password.
    model_config = ConfigDict(extra="ignore", validate_default=True, hide_input_in_errors=True)

    workspace: Path = Field(default=Path(DEFAULT_WORKSPACE), description="folder with the data")
    timezone: str = Field(default="UTC", description="company time zone for periods")
    currency: str = Field(default="USD", description="reporting currency (ISO 4217)")
    lang: str = Field(default="", description="interface language: en, ru or uk")
    week_start: str = Field(default="monday", description="first day of a week")
    csv_bom: bool = Field(
        default=False, description="start the CLI's CSV with a UTF-8 byte order mark, as "
        "Excel on Windows needs to read Cyrillic names; off: what programs expect")
    holidays: list[dt.date] = Field(
        default_factory=list, description="the company's days off besides weekends "
        "(YYYY-MM-DD): not working days for plans' pacing and the reverse planner")
    working_hours: str = Field(
        default="09:00-18:00", description="the company's working hours (HH:MM-HH:MM, "
        "company time) on working days (Monday to Friday less the holidays): alert "
        "deadlines such as a lead's contact SLA count only these hours")
    cache_seconds: float = Field(
        default=0, ge=0, description="keep a computed scorecard this long while the data is "
        "unchanged (the server sets 3600)"
    )
    sync_every_minutes: float = Field(
        default=15, ge=0, description="saleskpi serve syncs connected CRMs this often (0: never)"
    )
    query_timeout_seconds: float = Field(
        default=30, ge=0, description="a question still computing after this many seconds "
        "is stopped with an error saying how to narrow it (0: never)"
    )
    write_wait_seconds: float = Field(
        default=600, ge=0, description="an import or sync waits this long for another one "
        "writing the same workspace to finish, then gives up with a message saying so"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "names the client (sign-in throttling); none by default: the header is ignored",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="key that encrypts stored CRM credentials (Fernet, urlsafe base64); "
        "without it a key file is made in the workspace",
    )

    # -- delivery of notices: alerts, contests, scheduled reports (docs/reports.md) ----
    public_url: str = Field(
        default="", description="the dashboard's address as people open it, e.g. "
        "https://kpi.example.com: links in e-mails and messages start with it")
    smtp_host: str = Field(default="", description="SMTP server for e-mail (none: no e-mail)")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port")
    smtp_user: str = Field(default="", description="SMTP login (none: no login)")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password")
    smtp_from: str = Field(default="", description="the From address of e-mails")
    smtp_starttls: bool = Field(default=True, description="upgrade the SMTP connection with "
                                "STARTTLS (port 587)")
    smtp_ssl: bool = Field(default=False, description="SMTP over TLS from the start (port 465)")
    telegram_bot_token: SecretStr | None = Field(
        default=None, description="the Telegram bot's token (from @BotFather)")
    telegram_api_url: str = Field(default="https://api.telegram.org",
                                  description="the Telegram Bot API's address")
    slack_webhooks: dict[str, SecretStr] = Field(
        default_factory=dict, description="Slack incoming webhook URLs by whom they serve: "
        "'*' the company, a team's name, '@username' one person; one URL alone is the "
        "company's")
    teams_webhooks: dict[str, SecretStr] = Field(
        default_factory=dict, description="Microsoft Teams incoming webhook (Workflows) URLs, "
        "keyed as slack_webhooks")
    webhook_url: str = Field(default="", description="a URL that receives every notice of "
                             "the recipients who chose the webhook channel, signed")
    webhook_secret: SecretStr | None = Field(
        default=None, description="the key that signs webhook requests (HMAC-SHA256)")
    delivery_retries: int = Field(default=3, ge=0, le=10,
                                  description="tries after the first when a channel fails")
    delivery_backoff_seconds: float = Field(
        default=2.0, ge=0, le=60, description="the first pause before trying a channel "
        "again; doubled each time")
    delivery_timeout_seconds: float = Field(default=30, gt=0, le=300,
                                            description="how long one send may take")
    backend: Backend = Field(
        default="duckdb",
        description="where the facts live and KPIs are computed: duckdb (a file in the "
        "workspace), postgres (a PostgreSQL database) or clickhouse (a ClickHouse server "
        "or cluster)",
    )
    backend_url: SecretStr | None = Field(
        default=None,
        description="the analytics database of the postgres or clickhouse backend, e.g. "
        "postgresql://saleskpi:PASSWORD@db.example.com:5432/sales or "
        "clickhouse://saleskpi:PASSWORD@ch.example.com:8123/sales; a secret: set it in "
        "SALESKPI_BACKEND_URL or .env rather than in settings.yaml",
    )

    @field_validator("backend", mode="before")
    @classmethod
    def _backend_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            name = value.strip().lower()
            if name not in BACKENDS:
                raise ValueError(f"unknown backend {value!r}; use one of {', '.join(BACKENDS)}")
            return name
        return value

    @field_validator("backend_url", mode="before")
    @classmethod
    def _url_shape(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str):
            if not text.strip():
                return None
            check_backend_url(text.strip())  # the message never repeats the URL
            return text.strip()
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like Europe/Kyiv"
            ) from None
        return value

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        code = value.strip().upper()
        if len(code) != 3 or not code.isalpha():
            raise ValueError(f"currency {value!r} is not an ISO 4217 code like USD or UAH")
        return code

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # SALESKPI_TRUSTED_PROXIES=10.0.0.1,10.1.0.0/16
            value = [v for v in (p.strip() for p in value.split(",")) if v]
        if isinstance(value, list):
            import ipaddress

            for item in value:
                try:
                    ipaddress.ip_network(str(item), strict=False)
                except ValueError:
                    raise ValueError(f"trusted proxy {item!r} is not an IP address or "
                                     "network like 10.0.0.0/8") from None
        return value

    @field_validator("holidays", mode="before")
    @classmethod
    def _holiday_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # SALESKPI_HOLIDAYS=2026-12-25,2027-01-01
            value = [v for v in (p.strip() for p in value.split(",")) if v]
        return value

    @field_validator("slack_webhooks", "teams_webhooks", mode="before")
    @classmethod
    def _webhook_map(cls, value: Any) -> Any:
        """From the environment: a JSON object, or one URL (the company's)."""
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return {}
            if text.startswith("{"):
                import json

                try:
                    return json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not a JSON object of name: URL ({exc.msg})") from None
            return {"*": text}
        return value

    @field_validator("slack_webhooks", "teams_webhooks")
    @classmethod
    def _webhook_urls(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, url in value.items():
            if not url.get_secret_value().startswith(("http://", "https://")):
                # The URL is a secret: name the entry, not its value.
                raise ValueError(f"the URL for {name!r} is not an http:// or https:// address")
        return value

    @field_validator("public_url", "telegram_api_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        text = value.strip().rstrip("/")
        if text and not text.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// address")
        return text

    @field_validator("working_hours")
    @classmethod
    def _working_hours(cls, value: str) -> str:
        from saleskpi.domain.working_hours import parse_hours

        parse_hours(value)  # ValueError names what is wrong
        return value.strip()

    @field_validator("week_start")
    @classmethod
    def _monday_only(cls, value: str) -> str:
        if value.lower() != "monday":
            raise ValueError("only weeks starting on monday are supported for now")
        return value.lower()

    def __init__(self, *, _env_file: Path | None = Path(".env"),
                 **values: Any) -> None:
        names = type(self).model_fields
        env = _prefixed(os.environ.items(), names)
        dotenv = _dotenv(_env_file, names)
        workspace = Path(values.get("workspace") or env.get("workspace")
                         or dotenv.get("workspace") or DEFAULT_WORKSPACE)
        super().__init__(**{**_workspace_yaml(workspace), **dotenv, **env, **values})

    @property
    def analytics_path(self) -> Path:
        return self.workspace / "analytics.duckdb"

    @property
    def state_url(self) -> str:
        return f"sqlite:///{self.workspace / 'state.sqlite'}"

    @property
    def user_kpis_path(self) -> Path:
        return self.workspace / "kpis.yaml"

    @property
    def mappings_dir(self) -> Path:
        return self.workspace / "mappings"

    @property
    def kept_yaml_dir(self) -> Path:
        return kept_yaml_dir(self.workspace)

    @property
    def compiled_sql_dir(self) -> Path:
        """SQL compiled for KPI queries, kept for the next process (a cache: safe to delete)."""
        return self.workspace / "cache" / "sql"

    @property
    def store_facts_dir(self) -> Path:
        """What engines read about each version of the data (``engine/store_facts.py``)."""
        return self.workspace / "cache" / "facts"

    @property
    def kept_funnel_dir(self) -> Path:
        """Every deal's funnel events, kept per data version (a cache: safe to delete)."""
        return self.workspace / "cache" / "funnel"


def settings_problem(error: ValidationError) -> str:
    """A settings error as one line per setting, without pydantic's boilerplate."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
        for e in error.errors()
    )


def save_workspace_settings(settings: Settings, **values: object) -> None:
    """Store company-level settings (time zone, currency) in the workspace."""
    import yaml

    path = settings.workspace / WORKSPACE_SETTINGS_FILE
    private_dir(settings.workspace)
    current: dict[str, Any] = {}
    if path.is_file():
        current = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    current.update(values)
    write_private(path, yaml.safe_dump(current, allow_unicode=True, sort_keys=True))
