"""A real HTTP server on 127.0.0.1 that tests program with routes and faults.

Connectors are tested against this, not against mocks of httpx: requests go
over a real socket, so timeouts, status codes, headers and bodies behave as
they do against the real CRM.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


@dataclass
class Fault:
    """Answer the next ``times`` matching requests with ``response`` instead."""

    match: Callable[[Request], bool]
    response: Response
    times: int = 1


class FakeApi:
    """Routes by (method, path prefix); records every request; injects faults."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, Handler]] = []
        self.faults: list[Fault] = []
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def add(handler: Handler) -> Handler:
            self.routes.append((method.upper(), path, handler))
            return handler
        return add

    def fail(self, match: Callable[[Request], bool], response: Response, times: int = 1) -> None:
        with self._lock:
            self.faults.append(Fault(match, response, times))

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.log.append(request)
            for fault in self.faults:
                if fault.times > 0 and fault.match(request):
                    fault.times -= 1
                    return fault.response
        # Longest matching prefix wins, so "/api/v4/leads/pipelines" beats "/api/v4/leads".
        candidates = [(p, h) for m, p, h in self.routes
                      if m == request.method and request.path.startswith(p)]
        if not candidates:
            return Response(404, {"error": f"no route for {request.method} {request.path}"})
        _path, handler = max(candidates, key=lambda item: len(item[0]))
        return handler(request)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeApi:
        api = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length) if length else b"")
                response = api.handle(request)
                payload = response.body if isinstance(response.body, bytes) else (
                    b"" if response.body is None else json.dumps(response.body).encode())
                self.send_response(response.status)
                headers = {"Content-Type": "application/json", **response.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def serve(api: FakeApi) -> Iterator[FakeApi]:
    """For pytest fixtures: ``yield from serve(FakeApi())``."""
    api.start()
    try:
        yield api
    finally:
        api.stop()
