"""Issue 16's denial-of-service request against a real ``saleskpi serve``.

Usage::

    python benchmarks/dos_request.py [--size 1] [--repeat 20] [--workspace DIR]

Makes a demo company (``saleskpi demo --size``) in a scratch workspace, adds an
admin, starts ``saleskpi serve`` as its own process on a free local port, signs in
over HTTP and asks, ``--repeat`` times on one keep-alive connection,

    GET /api/v1/scorecard?kpi=revenue&by=rep&period=day&from=1900-01-01&to=2100-01-01

which must be refused with a clear 4xx (``too_many_periods``) at once. It prints the
status, the error code and the median and slowest answer times (client side, from
sending the request to the last byte), then one question within the limits as a
check that the same connection goes on serving.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOS = "/api/v1/scorecard?kpi=revenue&by=rep&period=day&from=1900-01-01&to=2100-01-01"
PASSWORD = "bench-password-1"


def saleskpi(workspace: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "saleskpi", "--workspace", str(workspace), *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(port: int, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"saleskpi serve exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("saleskpi serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--workspace", type=Path, default=None)
    args = parser.parse_args()
    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="saleskpi-dos-")) / "ws"
    env = dict(os.environ, SALESKPI_LANG="en")
    if not (workspace / "analytics.duckdb").exists():
        subprocess.run(saleskpi(workspace, "demo", "--size", str(args.size), "--quiet"),
                       check=True, env=env)
    subprocess.run(saleskpi(workspace, "user", "add", "dos-admin", "--role", "admin",
                            "--password", PASSWORD),
                   env=env, capture_output=True, check=False)  # already there: fine
    port = free_port()
    server = subprocess.Popen(saleskpi(workspace, "serve", "--port", str(port),
                                       "--sync-every", "0"),
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, server)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("POST", "/api/v1/session",
                     body=json.dumps({"username": "dos-admin", "password": PASSWORD}),
                     headers={"Content-Type": "application/json"})
        signed = conn.getresponse()
        signed.read()
        if signed.status != 200:
            raise SystemExit(f"sign-in failed: {signed.status}")
        cookie = signed.getheader("set-cookie", "").split(";")[0]
        times: list[float] = []
        status, code = 0, ""
        for _ in range(args.repeat):
            started = time.perf_counter()
            conn.request("GET", DOS, headers={"Cookie": cookie})
            response = conn.getresponse()
            body = response.read()
            times.append(time.perf_counter() - started)
            status, code = response.status, json.loads(body).get("error", "")
        conn.request("GET", "/api/v1/scorecard?kpi=revenue&by=team", headers={"Cookie": cookie})
        after = conn.getresponse()
        after.read()
        print(f"DoS request: {status} {code}; median {statistics.median(times) * 1000:.1f} ms, "
              f"slowest {max(times) * 1000:.1f} ms over {len(times)} answers "
              f"(demo size {args.size}); the next question on the same connection: "
              f"{after.status}")
    finally:
        server.terminate()
        server.wait(15)


if __name__ == "__main__":
    main()
