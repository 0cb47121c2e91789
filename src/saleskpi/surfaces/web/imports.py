"""Uploading data: a dry run first, then the same files imported on confirmation.

The uploaded files wait in ``<workspace>/uploads/<token>`` between the two steps;
the token is kept in the (signed) session, so only the uploader can confirm it.
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from starlette.responses import Response

from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.files import private_dir
from saleskpi.domain.reports import ImportReport
from saleskpi.service.import_staging import clean_stale, hide_folder, upload_name
from saleskpi.surfaces.http.uploads import MAX_UPLOAD, save_upload
from saleskpi.surfaces.web.deps import ManagerPageDep, Page
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _

router = APIRouter(route_class=WebRoute)
SESSION_IMPORT = "web_import"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_FIELD = 200


def mapping_names(page: Page) -> list[str]:
    """Mappings a user may pick: built-in ones and the workspace's own, by name only."""
    return page.service.mapping_names()


def uploads_dir(page: Page) -> Path:
    return page.service.settings.workspace / "uploads"


def _form(page: Page, *, report: ImportReport | None = None, error: str = "",
          token: str = "", status: int = 200) -> Response:
    return page.render("import.html", status=status, report=report, error=error, token=token,
                       mappings=mapping_names(page), title=_("Import data"))


@router.get("/import")
def import_form(page: ManagerPageDep) -> Response:
    return _form(page)


# A sync handler, so FastAPI runs it in a worker thread: the dry run takes seconds to
# minutes, and on the event loop it stopped every other request of the server. The
# thread gets a copy of the request's context, so the report speaks the reader's
# language (saleskpi.domain.i18n keeps it in a context variable).
@router.post("/import")
def upload(page: ManagerPageDep, files: Annotated[list[UploadFile], File()],
           csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
           mapping: Annotated[str, Form(max_length=MAX_FIELD)] = "",
           source: Annotated[str, Form(max_length=MAX_FIELD)] = "") -> Response:
    page.check_csrf(csrf)
    if mapping and mapping not in mapping_names(page):
        return _form(page, status=400, error=_("Unknown mapping {name!r}.", name=mapping))
    root = uploads_dir(page)
    clean_stale(root)
    token = secrets.token_urlsafe(24)
    staged = root / token
    private_dir(staged)
    room = MAX_UPLOAD
    for item in files:
        try:
            name = upload_name(item.filename)
        except SalesKpiError as exc:
            shutil.rmtree(staged, ignore_errors=True)
            return _form(page, status=400, error=exc.message)
        size = save_upload(item, staged / name, room)
        if size is None:
            shutil.rmtree(staged, ignore_errors=True)
            return _form(page, status=413, error=_("Uploads are limited to 50 MB."))
        room -= size
    report = _run(page, staged, mapping, source, dry_run=True)
    if not report.ok:
        shutil.rmtree(staged, ignore_errors=True)
        return _form(page, report=report)
    page.request.session[SESSION_IMPORT] = {"token": token, "mapping": mapping,
                                            "source": source}
    return _form(page, report=report, token=token)


@router.post("/import/confirm")
def confirm(page: ManagerPageDep, csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
            token: Annotated[str, Form(max_length=MAX_FIELD)] = "") -> Response:
    page.check_csrf(csrf)
    pending = page.request.session.get(SESSION_IMPORT)
    if not isinstance(pending, dict) or pending.get("token") != token or \
            not _TOKEN.match(token):
        raise PageError(400, _("This upload is no longer waiting for confirmation; upload "
                               "the files again."))
    staged = uploads_dir(page) / token
    if not staged.is_dir():
        raise PageError(400, _("This upload is no longer waiting for confirmation; upload "
                               "the files again."))
    page.request.session.pop(SESSION_IMPORT, None)
    try:
        report = _run(page, staged, str(pending.get("mapping") or ""),
                      str(pending.get("source") or ""), dry_run=False)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return _form(page, report=report)


def _run(page: Page, folder: Path, mapping: str, source: str, *,
         dry_run: bool) -> ImportReport:
    try:
        return hide_folder(page.service.import_path(folder, mapping=mapping or None,
                                                    source=source or None, dry_run=dry_run,
                                                    mapping_by_name_only=True), folder)
    except SalesKpiError as exc:
        raise PageError(400, str(exc)) from None
