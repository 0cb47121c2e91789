"""Uploaded files copied to disk in chunks, with one size limit for API and web."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import UploadFile

from saleskpi.domain.files import open_private

MAX_UPLOAD = 50 * 1024 * 1024
UPLOAD_CHUNK = 1024 * 1024
UPLOAD_SUFFIXES = (".csv", ".xlsx", ".txt", ".tsv")


def save_upload(upload: UploadFile, path: Path, room: int) -> int | None:
    """Copy an uploaded file to ``path``, in chunks; its size, or None past ``room`` bytes.

    FastAPI has received the whole file (in memory or a temporary file) before the
    handler runs, so reading ``upload.file`` only copies it: fit for a sync handler.
    """
    upload.file.seek(0)
    size = 0
    with os.fdopen(open_private(path), "wb") as out:
        while chunk := upload.file.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > room:
                return None
            out.write(chunk)
    return size
