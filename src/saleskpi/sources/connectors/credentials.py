"""CRM credentials, encrypted at rest in the workspace.

The key comes from settings (``SALESKPI_SECRET_KEY``). Without one, a key file
is created in the workspace, readable by its owner only: enough to keep tokens
out of backups of the data, and the docs say to set the variable on servers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.files import private_dir
from saleskpi.domain.i18n import _
from saleskpi.domain.settings import Settings

CREDENTIALS_FILE = "credentials.enc"
KEY_FILE = "secret.key"


class CredentialError(SalesKpiError):
    """The stored CRM credentials cannot be read (the workspace key changed?)."""

    default_code = "bad_credentials_store"


def workspace_key(settings: Settings) -> bytes:
    """The workspace secret: from settings, else a key file made once, owner-only."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.workspace / KEY_FILE
    if not path.exists():
        private_dir(settings.workspace)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
    return path.read_bytes().strip()


class CredentialStore:
    """{crm: {field: value}} in one encrypted file."""

    def __init__(self, settings: Settings) -> None:
        self.path: Path = settings.workspace / CREDENTIALS_FILE
        try:
            self._fernet = Fernet(workspace_key(settings))
        except ValueError:
            raise CredentialError(_(
                "SALESKPI_SECRET_KEY is not a valid key; make one with: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            )) from None

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            data = self._fernet.decrypt(self.path.read_bytes())
        except InvalidToken:
            raise CredentialError(_(
                "stored CRM credentials cannot be decrypted with this key; set the "
                "SALESKPI_SECRET_KEY they were saved with, or connect again")) from None
        loaded: dict[str, dict[str, str]] = json.loads(data)
        return loaded

    def get(self, crm: str) -> dict[str, str] | None:
        return self._read().get(crm)

    def names(self) -> list[str]:
        return sorted(self._read())

    def put(self, crm: str, values: dict[str, str]) -> None:
        data = self._read()
        data[crm] = values
        self._write(data)

    def delete(self, crm: str) -> None:
        data = self._read()
        if data.pop(crm, None) is not None:
            self._write(data)

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        """Encrypt and replace the file atomically, readable by its owner only."""
        token = self._fernet.encrypt(json.dumps(data).encode())
        private_dir(self.path.parent)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(token)
        tmp.replace(self.path)
