"""Uploaded files waiting between an import's dry run and its confirmation.

``<workspace>/uploads/<token>/files/`` holds the files; ``pending.json`` says who
uploaded them and with which mapping and source. Confirming claims the upload
(an atomic rename of ``pending.json`` to ``claimed-<pid>.json``), so one token
imports its files once; a ``done.json`` stays behind so that a second confirmation
is told why it is refused. A claim whose process is gone (killed during the
import) may be claimed again: the write journal has settled (or the next open of
the store settles) whatever that import began, and importing the same files again
changes nothing that was stored. Uploads left for an hour are removed (as the web's
import page does with its own).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from saleskpi.domain.errors import Conflict, Forbidden, InvalidQuery, NotFound
from saleskpi.domain.files import private_dir, write_private
from saleskpi.domain.i18n import _
from saleskpi.domain.reports import ImportReport
from saleskpi.domain.settings import Settings

UPLOADS = "uploads"
SUFFIXES = (".csv", ".xlsx", ".txt", ".tsv")
# A dry run's files wait an hour for their confirmation, then go: they may hold a
# whole CRM export, and a reader of the workspace should not find it days later.
STALE_AFTER = 3600
PENDING, DONE = "pending.json", "done.json"
CLAIMED = "claimed-{pid}.json"  # the claiming process's id: a dead claim may be retaken
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# A file name's bytes: file systems hold 255; the rest is room for what is added to it.
MAX_NAME = 200


@dataclass(frozen=True)
class Stage:
    token: str
    root: Path  # uploads/<token>

    @property
    def folder(self) -> Path:
        """Where the uploaded files go: the folder that is imported."""
        return self.root / "files"


@dataclass(frozen=True)
class Pending:
    stage: Stage
    user_id: int
    mapping: str | None
    source: str | None


def uploads_dir(settings: Settings) -> Path:
    return settings.workspace / UPLOADS


def new_stage(settings: Settings) -> Stage:
    """An empty folder for one upload, under a new unguessable token."""
    root = uploads_dir(settings)
    clean_stale(root)
    token = secrets.token_urlsafe(24)
    stage = Stage(token, root / token)
    private_dir(stage.folder)
    return stage


def upload_name(filename: str | None) -> str:
    """The name an uploaded file is stored under; ``InvalidQuery`` for other kinds of file."""
    name = Path(filename or "upload.csv").name
    if len(name.encode("utf-8")) > MAX_NAME:
        raise InvalidQuery(_("{name}…: the file name is too long; rename the file (at most "
                             "{limit} bytes)", name=name[:40], limit=MAX_NAME),
                           code="bad_file")
    if not name.lower().endswith(SUFFIXES) or name.startswith("."):
        raise InvalidQuery(_("{name}: upload .csv or .xlsx files", name=name), code="bad_file")
    return name


def remember(stage: Stage, *, user_id: int, mapping: str | None, source: str | None) -> None:
    """The dry run passed: keep the files until ``user_id`` confirms them."""
    write_private(stage.root / PENDING, json.dumps(
        {"user_id": user_id, "mapping": mapping, "source": source}))


def hide_folder(report: ImportReport, folder: Path) -> ImportReport:
    """``report`` without the server's path of the upload folder: a reader of an upload's
    report sees the file names they sent, never where the server keeps them."""
    where = str(folder)

    def hidden(text: str) -> str:
        if where not in text:
            return text
        return text.replace(where + os.sep, "").replace(where, _("the upload"))

    for issue in report.errors:
        issue.file, issue.message = hidden(issue.file), hidden(issue.message)
    for warning in report.warnings:
        warning.message = hidden(warning.message)
        if warning.file is not None:
            warning.file = hidden(warning.file)
    return report


def discard(stage: Stage) -> None:
    shutil.rmtree(stage.root, ignore_errors=True)


def _claims(stage: Stage) -> list[Path]:
    return sorted(stage.root.glob(CLAIMED.format(pid="*")))


def _alive(claim: Path) -> bool:
    """Whether the process that made ``claim`` still runs (it may be importing now)."""
    try:
        pid = int(claim.stem.removeprefix("claimed-"))
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True  # a process of another user has that id: assume it is the claimer
    return True


def claim(settings: Settings, token: str, user_id: int) -> Pending:
    """Take the upload ``token`` for importing: once, and only by whoever uploaded it."""
    gone = _("This upload is no longer waiting for confirmation; upload the files again.")
    already = _("This upload was already imported.")
    if not _TOKEN.match(token):
        raise NotFound(gone, code="no_pending_import")
    stage = Stage(token, uploads_dir(settings) / token)
    mine = stage.root / CLAIMED.format(pid=os.getpid())
    source = stage.root / PENDING
    try:
        meta = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        claims = _claims(stage)
        if (stage.root / DONE).exists():
            raise Conflict(already, code="already_imported") from None
        if not claims:
            raise NotFound(gone, code="no_pending_import") from None
        if _alive(claims[0]):
            raise Conflict(already, code="already_imported") from None
        source = claims[0]  # its importer was killed: import the files again
        try:
            meta = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise Conflict(already, code="already_imported") from None
    if meta.get("user_id") != user_id:
        raise Forbidden(_("Only whoever uploaded these files may confirm their import."))
    try:
        source.rename(mine)  # atomic: of two confirmations, one wins
    except FileNotFoundError:
        raise Conflict(already, code="already_imported") from None
    return Pending(stage, user_id, meta.get("mapping") or None, meta.get("source") or None)


def finish(pending: Pending) -> None:
    """After the import: drop the files, keep a note that the token was used."""
    shutil.rmtree(pending.stage.folder, ignore_errors=True)
    for claimed in _claims(pending.stage):
        claimed.rename(pending.stage.root / DONE)


def clean_stale(root: Path) -> None:
    """Remove the uploads under ``root`` untouched for ``STALE_AFTER`` seconds."""
    if not root.is_dir():
        return
    for staged in root.iterdir():
        if staged.is_dir() and time.time() - staged.stat().st_mtime > STALE_AFTER:
            shutil.rmtree(staged, ignore_errors=True)


def open_stage(settings: Settings, token: str) -> Stage:
    """A stage made by ``new_stage`` whose files were not tried yet (``NotFound`` otherwise)."""
    stage = Stage(token, uploads_dir(settings) / token)
    if not _TOKEN.match(token) or not stage.folder.is_dir() or _claims(stage) or any(
            (stage.root / name).exists() for name in (PENDING, DONE)):
        raise NotFound(_("This upload is no longer waiting for confirmation; upload the "
                         "files again."), code="no_pending_import")
    return stage
