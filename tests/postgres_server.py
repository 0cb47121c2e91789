"""A real PostgreSQL server for tests: Debian's binaries, a throwaway cluster on 127.0.0.1.

The cluster is made with ``initdb`` in a folder of its own and started with
``pg_ctl`` on a free port, as the ``postgres`` OS user when the tests run as root
(PostgreSQL refuses to run as root). It asks for a password (SCRAM), so the URL the
tests hand to saleskpi carries a secret, as a real one does. Nothing is left
behind: ``stop`` shuts the server down and removes the folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BINARIES = "/usr/lib/postgresql/*/bin"
USER = "postgres"
START_SECONDS = 60


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder, if any."""
    found = sorted(glob.glob(f"{BINARIES}/initdb"),
                   key=lambda p: int(Path(p).parents[1].name or 0)
                   if Path(p).parents[1].name.isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_owner(args: list[str]) -> list[str]:
    """``args`` run as the ``postgres`` user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", USER, "--", *args]
    return args


@dataclass
class PostgresServer:
    bin: Path
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="saleskpi-pg-")))
    port: int = field(default_factory=_free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    _databases: int = 0

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def start(self) -> None:
        password_file = self.folder / "password"
        password_file.write_text(self.password, encoding="utf-8")
        if os.geteuid() == 0:
            shutil.chown(self.folder, USER)
            shutil.chown(password_file, USER)
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", USER,
                   "--auth=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8",
                   "--locale=C.UTF-8", "--no-sync"])
        password_file.unlink()
        # A throwaway cluster: no durability needed, only speed.
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.data} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                   str(self.folder / "server.log"), "-o", options, "-w",
                   "-t", str(START_SECONDS), "start"])

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                       "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "test", template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``); its URL."""
        import psycopg

        self._databases += 1
        name = f"{prefix}_{self._databases}_{secrets.token_hex(3)}".lower()
        with psycopg.connect(self.url(), autocommit=True) as con:
            copy = f" TEMPLATE {template}" if template else ""
            con.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(_as_owner(args), capture_output=True, text=True, timeout=120,
                              cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:1])} failed ({done.returncode}):\n"
                               f"{done.stdout}\n{done.stderr}\n{self.log()[-2000:]}")


def wait_until_accepting(url: str, seconds: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + seconds
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
