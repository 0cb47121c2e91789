"""Imports: the report of what an import did or would do, and a confirmation step.

Uploads (REST, MCP) are staged in the workspace (``saleskpi.service.import_staging``)
and dry-run first: a clean dry run returns a ``confirm`` token, and confirming it
imports exactly those files, once, by whoever uploaded them. The CLI imports files
on its own machine (``import_local``). Every surface returns the same report:
``ImportReport.to_dict`` plus ``confirm``. Managers only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from saleskpi.domain.errors import Forbidden
from saleskpi.domain.i18n import _
from saleskpi.domain.reports import ImportReport
from saleskpi.service import import_staging as staging
from saleskpi.service.core import SalesKpiService
from saleskpi.service.principal import Principal
from saleskpi.views.base import LOCAL, ViewModel, require_manager

Progress = Callable[[str], None]


class ImportParams(BaseModel):
    mapping: str | None = Field(default=None, description="A mapping's name (saleskpi "
                                "mappings), for other tools' exports.")
    source: str | None = Field(default=None, description="The data source's name (rows are "
                               "keyed by source and id).")
    dry_run: bool = Field(default=True, description="Check and count; write nothing.")


class UploadImportParams(ImportParams):
    stage: str = Field(description="The staged upload's token (staging.new_stage).")


class LocalImportParams(ImportParams):
    path: Path = Field(description="A folder of CSV files or one workbook on this machine.")
    dry_run: bool = False


class EntityCountsModel(BaseModel):
    inserted: int
    updated: int
    unchanged: int
    rejected: int


class ImportIssueModel(BaseModel):
    file: str
    row: int | None
    column: str | None
    message: str
    hint: str


class ImportWarningModel(BaseModel):
    code: str
    message: str
    count: int
    file: str | None
    column: str | None
    examples: list[str]


class ImportReportView(ViewModel):
    ok: bool = Field(description="No errors: everything was (or would be) imported.")
    dry_run: bool
    # ``source`` is the view's domain object (ViewModel.source): the field has another name.
    source_name: str = Field(alias="source", description="The data source the rows are in.")
    entities: dict[str, EntityCountsModel]
    errors: list[ImportIssueModel] = Field(description="What stopped the import.")
    errors_not_shown: int
    warnings: list[ImportWarningModel]
    confirm: str | None = Field(
        description="After a clean dry run of uploaded files: the token that imports them "
        "(POST /api/v1/imports/{confirm}/confirm).")


def _view(report: ImportReport, confirm: str | None) -> ImportReportView:
    view: ImportReportView = ImportReportView.model_validate(
        {**report.to_dict(), "confirm": confirm}).with_source(report)
    return view


def start_upload(service: SalesKpiService, caller: Principal) -> staging.Stage:
    """An empty staging folder for the caller's upload (managers only)."""
    require_manager(caller)
    return staging.new_stage(service.settings)


def import_files(service: SalesKpiService, caller: Principal, params: UploadImportParams,
                 progress: Progress | None = None) -> ImportReportView:
    """Import the staged upload; a clean dry run keeps the files for ``confirm_import``."""
    require_manager(caller)
    stage = staging.open_stage(service.settings, params.stage)
    try:
        report = staging.hide_folder(service.import_path(
            stage.folder, mapping=params.mapping, source=params.source,
            dry_run=params.dry_run, progress=progress, mapping_by_name_only=True),
            stage.folder)
    except BaseException:
        staging.discard(stage)
        raise
    if not (params.dry_run and report.ok):
        staging.discard(stage)
        return _view(report, None)
    staging.remember(stage, user_id=caller.user_id, mapping=params.mapping,
                     source=params.source)
    return _view(report, stage.token)


class ConfirmParams(BaseModel):
    token: str = Field(description="The dry run's ``confirm`` token.")


def confirm_import(service: SalesKpiService, caller: Principal, params: ConfirmParams,
                   progress: Progress | None = None) -> ImportReportView:
    """Import exactly the files of a dry run: once, and only by whoever uploaded them."""
    require_manager(caller)
    pending = staging.claim(service.settings, params.token, caller.user_id)
    try:
        report = staging.hide_folder(service.import_path(
            pending.stage.folder, mapping=pending.mapping, source=pending.source,
            dry_run=False, progress=progress, mapping_by_name_only=True), pending.stage.folder)
    finally:
        staging.finish(pending)
    return _view(report, None)


def import_local(service: SalesKpiService, caller: Principal, params: LocalImportParams,
                 progress: Progress | None = None) -> ImportReportView:
    """Import files of this machine (the CLI): ``mapping`` may also be a YAML file."""
    if caller != LOCAL:
        raise Forbidden(_("only the command line may import files by their path"))
    report = service.import_path(params.path, mapping=params.mapping, source=params.source,
                                 dry_run=params.dry_run, progress=progress)
    return _view(report, None)
