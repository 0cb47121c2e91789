"""REST v1: Imports: upload, dry-run report, confirm.

The same JSON as the CLI's ``--format json``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, UploadFile

from saleskpi.domain.errors import TooLarge
from saleskpi.domain.i18n import _
from saleskpi.service.import_staging import discard, upload_name
from saleskpi.surfaces.api.people import ManagerCaller
from saleskpi.surfaces.http.deps import ServiceDep, csrf_header
from saleskpi.surfaces.http.uploads import MAX_UPLOAD, save_upload
from saleskpi.views.imports import (
    ConfirmParams,
    ImportReportView,
    UploadImportParams,
    confirm_import,
    import_files,
    start_upload,
)

router = APIRouter(prefix="/api/v1")


# Sync handlers, so FastAPI runs them in a worker thread: an import (dry run or real)
# takes seconds to minutes, and on the event loop it stopped every other request.
@router.post("/imports", response_model=ImportReportView, dependencies=[Depends(csrf_header)])
def upload_import(user: ManagerCaller, svc: ServiceDep,
                  files: Annotated[list[UploadFile], File()],
                  dry_run: bool = True, mapping: str | None = None,
                  source: str | None = None) -> dict[str, Any]:
    """Upload CSV files or one workbook: a dry run by default, whose report carries a
    `confirm` token when nothing is wrong; POST it to `/imports/{confirm}/confirm`.
    `dry_run=false` imports at once."""
    stage = start_upload(svc, user)
    try:
        room = MAX_UPLOAD
        for upload in files:
            size = save_upload(upload, stage.folder / upload_name(upload.filename), room)
            if size is None:
                raise TooLarge(_("Uploads are limited to 50 MB."), code="too_large")
            room -= size
    except BaseException:
        discard(stage)
        raise
    params = UploadImportParams(stage=stage.token, mapping=mapping, source=source,
                                dry_run=dry_run)
    return import_files(svc, user, params).to_json()


@router.post("/imports/{token}/confirm", response_model=ImportReportView,
             dependencies=[Depends(csrf_header)])
def confirm(token: str, user: ManagerCaller, svc: ServiceDep) -> dict[str, Any]:
    """Import the files of a dry run, exactly those, once (409 the second time)."""
    return confirm_import(svc, user, ConfirmParams(token=token)).to_json()
