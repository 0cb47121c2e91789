"""One settings object for the whole product.

Priority, highest first: values passed in code (CLI options), environment
variables ``SALESKPI_*``, a ``.env`` file in the current directory, the
workspace's ``settings.yaml`` (written by ``saleskpi demo`` or by hand), defaults.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

WORKSPACE_SETTINGS_FILE = "settings.yaml"


class _WorkspaceYamlSource(PydanticBaseSettingsSource):
    """Reads ``<workspace>/settings.yaml``; the workspace itself comes from the other sources."""

    def __init__(self, settings_cls: type[BaseSettings], workspace: Path) -> None:
        super().__init__(settings_cls)
        self._workspace = workspace

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns everything at once

    def __call__(self) -> dict[str, Any]:
        path = self._workspace / WORKSPACE_SETTINGS_FILE
        if not path.is_file():
            return {}
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of setting: value")
        data.pop("workspace", None)
        data.pop("secret_key", None)  # secrets never live in a file next to the data
        return data


class Settings(BaseSettings):
    """Where the data lives and how numbers are bucketed and shown."""

    model_config = SettingsConfigDict(
        env_prefix="SALESKPI_", env_file=".env", extra="ignore", validate_default=True
    )

    workspace: Path = Field(default=Path("saleskpi-data"), description="folder with the data")
    timezone: str = Field(default="UTC", description="company time zone for periods")
    currency: str = Field(default="USD", description="reporting currency (ISO 4217)")
    lang: str = Field(default="", description="interface language: en, ru or uk")
    week_start: str = Field(default="monday", description="first day of a week")
    cache_seconds: float = Field(
        default=0, ge=0, description="keep a computed scorecard this long while the data is "
        "unchanged (the server sets 3600)"
    )
    sync_every_minutes: float = Field(
        default=15, ge=0, description="saleskpi serve syncs connected CRMs this often (0: never)"
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="key that encrypts stored CRM credentials (Fernet, urlsafe base64); "
        "without it a key file is made in the workspace",
    )

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

    @field_validator("week_start")
    @classmethod
    def _monday_only(cls, value: str) -> str:
        if value.lower() != "monday":
            raise ValueError("only weeks starting on monday are supported for now")
        return value.lower()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        workspace = (
            init_settings().get("workspace")
            or env_settings().get("workspace")
            or dotenv_settings().get("workspace")
            or "saleskpi-data"
        )
        yaml_source = _WorkspaceYamlSource(settings_cls, Path(workspace))
        return (init_settings, env_settings, dotenv_settings, yaml_source)

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


def settings_problem(error: ValidationError) -> str:
    """A settings error as one line per setting, without pydantic's boilerplate."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
        for e in error.errors()
    )


def save_workspace_settings(settings: Settings, **values: str) -> None:
    """Store company-level settings (time zone, currency) in the workspace."""
    path = settings.workspace / WORKSPACE_SETTINGS_FILE
    settings.workspace.mkdir(parents=True, exist_ok=True)
    current: dict[str, Any] = {}
    if path.is_file():
        current = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    current.update(values)
    path.write_text(yaml.safe_dump(current, allow_unicode=True, sort_keys=True), encoding="utf-8")
