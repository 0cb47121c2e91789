"""ClickHouse's HTTP interface over chdb: a real ClickHouse engine for ``clickhouse://`` URLs.

There is no ClickHouse server to test against here (Debian's is 18.16, far too old),
but chdb is the current ClickHouse engine as a library. This serves it on 127.0.0.1
with as much of ClickHouse's HTTP protocol as ``clickhouse-connect`` uses
(``get_client``, ``query_arrow``, ``command``, ``insert_arrow``), so that the
store's ``ServerSession`` runs unchanged over a real socket:

- the query is the ``query`` URL parameter followed by the request body (a POST),
  or the body alone; ``INSERT … FORMAT <name>`` takes the rest of the body as data,
  decompressed per ``Content-Encoding`` (gzip, deflate, zstd, lz4), and appended
  through a file chdb reads (chdb has no input stream);
- ``param_<name>`` (URL or multipart form fields) are bound as typed query
  parameters through chdb's own ``params``;
- ``FORMAT <name>`` at the end of a query picks the output (chdb writes every
  format ClickHouse does); without one the answer is TabSeparated, as ClickHouse's;
- ``database`` is applied (``USE`` for the request; an unknown one fails with
  code 81); ``session_id`` keeps each session's ``SET`` settings apart (they are
  applied before each of that session's requests and taken back after it);
  every other URL parameter that is not part of the transport is applied as a
  setting of that request, so an unknown setting fails as on a server;
- answers carry ``X-ClickHouse-Query-Id``, ``-Summary``, ``-Timezone``,
  ``-Format``, ``-Server-Display-Name``; errors are ClickHouse's own text
  (``Code: N. DB::Exception: …``) with ``X-ClickHouse-Exception-Code`` and the
  status ClickHouse gives that code (403 for a failed login, 400/404 for bad
  queries and unknown tables, 500 otherwise);
- HTTP basic auth or ``X-ClickHouse-User``/``-Key`` is checked against the one
  user it was started with (code 516, AUTHENTICATION_FAILED).

What it does not do (and the tests therefore do not show): temporary tables are
shared by all sessions (chdb has one; the store's staging tables ``stage_<entity>``
would clash between two imports at once, which a server keeps apart), a session
never expires, answers are sent uncompressed (ClickHouse compresses only when
asked; the client accepts that), progress headers are not sent, there is one node
(no cluster, no ``ON CLUSTER``, no replication, no ``Distributed`` tables), there is
no TLS, and requests run one at a time.

It runs as a process of its own (``python -m tests.fakes.clickhouse_http FOLDER``)
because chdb opens one data folder per process: the test process keeps its own
chdb for the ``chdb://`` cases. ``ClickHouseHttpServer`` starts and stops one.
"""

from __future__ import annotations

import argparse
import base64
import email.parser
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SERVER_NAME = "saleskpi-chdb-http"
# URL parameters that belong to the HTTP transport, not to the query's settings.
TRANSPORT = {"query", "database", "session_id", "session_timeout", "session_check",
             "query_id", "quota_key", "wait_end_of_query", "client_protocol_version",
             "compress", "decompress", "buffer_size", "role", "user", "password",
             "default_format", "enable_http_compression", "send_progress_in_http_headers",
             "http_headers_progress_interval_ms", "cancel_http_readonly_queries_on_client_close",
             "http_zlib_compression_level", "max_query_size"}
_FORMAT_AT_END = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_INSERT_FORMAT = re.compile(r"^\s*INSERT\s+INTO\s+(.+?)\s+FORMAT\s+(\w+)[ \t]*\r?\n?",
                            re.IGNORECASE | re.DOTALL)
_SET = re.compile(r"^\s*SET\s+(?!ROLE\b)", re.IGNORECASE)
_USE = re.compile(r"^\s*USE\s+", re.IGNORECASE)
_CODE = re.compile(r"Code:\s*(\d+)")
_SETTING_NAME = re.compile(r"^\w+$")
# ClickHouse's exceptionCodeToHTTPStatus, for the codes saleskpi can meet.
_FORBIDDEN = {192, 193, 194, 195, 497, 516}  # unknown user, wrong password, access…
_BAD_REQUEST = {6, 25, 26, 27, 36, 38, 41, 43, 44, 46, 47, 53, 62, 69, 72, 115, 117, 457}
_NOT_FOUND = {60, 81, 511}  # unknown table, database, role


class QueryFailed(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        found = _CODE.search(text)
        self.code = int(found.group(1)) if found else 1000
        self.text = text


def _status_of(code: int) -> int:
    if code in _FORBIDDEN:
        return 403
    if code in _BAD_REQUEST:
        return 400
    if code in _NOT_FOUND:
        return 404
    return 500


def decompressed(body: bytes, encoding: str | None) -> bytes:
    """A request body as sent before ``Content-Encoding`` (ClickHouse's HTTP encodings)."""
    encoding = (encoding or "").strip().lower()
    if not encoding or encoding == "identity":
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "zstd":
        try:
            import zstandard

            return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(body))
        except ImportError:
            from backports import zstd

            return bytes(zstd.decompress(body))
    if encoding == "lz4":
        import lz4.frame

        return bytes(lz4.frame.decompress(body))
    raise QueryFailed(f"Code: 1. DB::Exception: Unknown Content-Encoding: {encoding}. "
                      "(UNSUPPORTED_METHOD)")


class Engine:
    """chdb behind one lock: the database, the session's and the request's settings
    applied before each statement and taken back after it."""

    def __init__(self, folder: str) -> None:
        import chdb.session

        Path(folder).mkdir(parents=True, exist_ok=True)
        self._chdb = chdb.session.Session(folder)  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()
        self.sessions: dict[str, dict[str, str]] = {}
        self._baseline = self._changed()
        self.version, self.timezone = self._one("SELECT version(), timezone()")

    def _one(self, sql: str) -> list[str]:
        text = self._raw(sql, "TabSeparated", {}).decode()
        return text.rstrip("\n").split("\t")

    def _raw(self, sql: str, fmt: str, params: dict[str, str]) -> bytes:
        try:
            found = self._chdb.query(sql, fmt, params=params or None)
        except Exception as exc:  # chdb raises ClickHouse's own text
            raise QueryFailed(str(exc)) from None
        return bytes(found.bytes()) if found is not None else b""

    def _changed(self) -> dict[str, str]:
        text = self._raw("SELECT name, value FROM system.settings WHERE changed",
                         "TabSeparated", {}).decode()
        return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)

    def _apply(self, settings: dict[str, str]) -> None:
        for name, value in settings.items():
            if not _SETTING_NAME.match(name):
                raise QueryFailed(f"Code: 115. DB::Exception: Unknown setting '{name}'. "
                                  "(UNKNOWN_SETTING)")
            quoted = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            self._raw(f"SET {name} = {quoted}", "TabSeparated", {})

    def _restore(self) -> dict[str, str]:
        """Back to the server's settings; answers what the request had changed."""
        now = self._changed()
        changed = {k: v for k, v in now.items() if self._baseline.get(k) != v}
        for name in changed:
            if name in self._baseline:
                self._apply({name: self._baseline[name]})
            else:
                self._raw(f"SET {name} = DEFAULT", "TabSeparated", {})
        return changed

    def run(self, sql: str, fmt: str, *, params: dict[str, str], settings: dict[str, str],
            database: str | None, session: str | None, data: bytes | None = None,
            data_format: str | None = None, target: str | None = None) -> tuple[bytes, Any]:
        with self._lock:
            try:
                if database:
                    self._raw(f"USE `{database.replace('`', '')}`", "TabSeparated", {})
                self._apply(self.sessions.get(session, {}) if session else {})
                self._apply(settings)
                if data is not None:
                    return self._insert(target or "", data, data_format or "Native")
                found = self._chdb.query(sql, fmt, params=params or None)
                if session and _SET.match(sql):
                    # The session keeps what it set (the request's own settings aside).
                    kept = dict(self.sessions.get(session, {}))
                    now = self._changed()
                    kept.update({k: v for k, v in now.items()
                                 if self._baseline.get(k) != v and k not in settings})
                    self.sessions[session] = kept
                return (bytes(found.bytes()) if found is not None else b""), found
            except QueryFailed:
                self._flush()
                raise
            except Exception as exc:
                self._flush()
                raise QueryFailed(str(exc)) from None
            finally:
                self._restore()
                if database:
                    self._raw("USE default", "TabSeparated", {})

    def _flush(self) -> None:
        """chdb hands a failed query's partial output to the next query: take it here."""
        self._chdb.query("SELECT 1", "TabSeparated")

    def _insert(self, target: str, data: bytes, data_format: str) -> tuple[bytes, Any]:
        with tempfile.TemporaryDirectory(prefix="chdb-http-") as folder:
            path = Path(folder) / "rows"
            path.write_bytes(data)
            found = self._chdb.query(f"INSERT INTO {target} SELECT * FROM "
                                     f"file('{path.as_posix()}', {data_format})", "TabSeparated")
            return b"", found


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ClickHouseHttp

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the tests read errors from the answers

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._chunked()
        else:
            body = self.rfile.read(length) if length else b""
        self._serve(body)

    def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _serve(self, body: bytes) -> None:
        url = urlsplit(self.path)
        if url.path.rstrip("/") == "/ping":
            self._answer(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        query_id = str(uuid.uuid4())
        try:
            args = dict(parse_qsl(url.query, keep_blank_values=True))
            query_id = args.get("query_id") or query_id
            self._authenticate(args)
            form = self._form(body)
            if form is not None:
                args.update(form)
                body = b""
            else:
                body = decompressed(body, self.headers.get("Content-Encoding"))
            self._query(args, body, query_id)
        except QueryFailed as failed:
            text = failed.text
            if "(version" not in text:
                text += f" (version {self.server.engine.version})"
            self._answer(_status_of(failed.code), (text + "\n").encode(), {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Exception-Code": str(failed.code),
                "X-ClickHouse-Query-Id": query_id})

    def _authenticate(self, args: dict[str, str]) -> None:
        user, password = args.get("user", "default"), args.get("password", "")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        elif self.headers.get("X-ClickHouse-User"):
            user = self.headers["X-ClickHouse-User"]
            password = self.headers.get("X-ClickHouse-Key", "")
        if (user, password) != (self.server.user, self.server.password):
            raise QueryFailed(
                f"Code: 516. DB::Exception: {user}: Authentication failed: password is "
                "incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)")

    def _form(self, body: bytes) -> dict[str, str] | None:
        """Fields of a multipart form (the client sends long parameters that way)."""
        kind = self.headers.get("Content-Type", "")
        if not kind.startswith("multipart/form-data"):
            return None
        message = email.parser.BytesParser().parsebytes(
            f"Content-Type: {kind}\r\n\r\n".encode() + body)
        fields: dict[str, str] = {}
        for part in message.get_payload():  # type: ignore[union-attr]
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            fields[str(name)] = payload.decode() if isinstance(payload, bytes) else ""
        return fields

    def _query(self, args: dict[str, str], body: bytes, query_id: str) -> None:
        engine = self.server.engine
        sql = args.get("query", "")
        data: bytes | None = None
        head = sql if sql else body[:4096].decode(errors="replace")
        insert = _INSERT_FORMAT.match(head)
        if insert and sql:
            data = body  # the statement in the URL, the rows in the body
        elif insert:
            data = body[len(insert.group(0).encode()):]
            sql = insert.group(0)
        else:
            sql = (sql + "\n" + body.decode()) if sql and body else (sql or body.decode())
        if not sql.strip():
            raise QueryFailed("Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
        params = {k[6:]: v for k, v in args.items() if k.startswith("param_")}
        settings = {k: v for k, v in args.items()
                    if k not in TRANSPORT and not k.startswith("param_")}
        fmt_found = _FORMAT_AT_END.search(sql) if data is None else None
        fmt = fmt_found.group(1) if fmt_found else args.get("default_format", "TabSeparated")
        if fmt_found:
            sql = sql[:fmt_found.start()]
        if _USE.match(sql):
            raise QueryFailed("Code: 48. DB::Exception: USE is not supported over HTTP: "
                              "give the database parameter. (NOT_IMPLEMENTED)")
        started = time.perf_counter_ns()
        out, found = engine.run(
            sql, fmt, params=params, settings=settings, database=args.get("database"),
            session=args.get("session_id"), data=data,
            data_format=insert.group(2) if insert else None,
            target=insert.group(1) if insert else None)
        def count(name: str) -> str:
            measure = getattr(found, name, None)
            return str((measure() if callable(measure) else measure) or 0)

        summary = {"read_rows": count("rows_read"), "read_bytes": count("bytes_read"),
                   "written_rows": count("rows_written"),
                   "written_bytes": count("bytes_written"), "total_rows_to_read": "0",
                   "result_rows": "0", "result_bytes": str(len(out)),
                   "elapsed_ns": str(time.perf_counter_ns() - started)}
        self._answer(200, out, {
            "Content-Type": "application/octet-stream" if fmt not in (
                "TabSeparated", "TSV", "JSON", "CSV") else "text/plain; charset=UTF-8",
            "X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": settings.get("session_timezone")
            or engine.sessions.get(args.get("session_id") or "", {}).get("session_timezone")
            or engine.timezone,
            "X-ClickHouse-Server-Display-Name": SERVER_NAME,
            "X-ClickHouse-Summary": json.dumps(summary)})

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ClickHouseHttp(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, folder: str, user: str, password: str, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.engine = Engine(folder)
        self.user = user
        self.password = password


class ClickHouseHttpServer:
    """The server as a process of its own, on a free port of 127.0.0.1."""

    def __init__(self, folder: Path, user: str = "sales", password: str = "s3cret-pass") -> None:
        self.folder = folder
        self.user = user
        self.password = password
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = dict(os.environ, SALESKPI_CH_HTTP_PASSWORD=self.password)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.clickhouse_http", str(self.folder),
             "--user", self.user], stdout=subprocess.PIPE, text=True, env=env, cwd=root)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()  # "port N" once it listens
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError(f"the ClickHouse HTTP test server did not start: {line!r}")
        self.port = int(line.split()[1])

    def url(self, database: str = "default", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"clickhouse://{self.user}:{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import urllib.request

        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/", data=f"CREATE DATABASE {name}".encode(),
            headers={"Authorization": "Basic " + base64.b64encode(
                f"{self.user}:{self.password}".encode()).decode()})
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
        return self.url(name)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder")
    parser.add_argument("--user", default="default")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ClickHouseHttp(args.folder, args.user,
                            os.environ.get("SALESKPI_CH_HTTP_PASSWORD", ""), args.port)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
