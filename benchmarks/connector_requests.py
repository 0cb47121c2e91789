"""How many API requests a full and an incremental sync cost, per CRM, against the fakes.

Each CRM's fake (tests/fakes) holds its small test company. The script connects a
fresh workspace, runs a full sync, makes the changes of that connector's
incremental test (a new record, a deal won, one deleted, ...), runs an incremental
sync and then ``sync --full`` again, and prints the requests each sync made,
with the CRM's own page sizes ("real pages") and with tiny pages (every list
spans several pages).

    python benchmarks/connector_requests.py            # the table
    python benchmarks/connector_requests.py --detail   # and the requests per endpoint
    python benchmarks/connector_requests.py --json out.json

Run it from the project root (it imports ``tests.fakes``). Requests refused by a
fake's rate limit (Bitrix24's bucket) are counted apart and should be 0.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import amocrm, bitrix24, hubspot, pipedrive
from tests.fakes.server import Request

from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.sources.connectors.base import ClientOptions
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.sources.connectors.sync import sync

# No waiting: the counts do not depend on the pace (Bitrix24's bucket drains as fast).
FAST = ClientOptions(rate_limit=1000, backoff=0.01)


@dataclass
class Run:
    crm: str
    pages: str
    full: int = 0
    incremental: int = 0
    resync: int = 0  # ``sync --full`` afterwards, the company already stored
    refused: int = 0
    full_endpoints: dict[str, int] = field(default_factory=dict)
    incremental_endpoints: dict[str, int] = field(default_factory=dict)


@dataclass
class Company:
    """A started fake, its credentials, its request log and the changes to sync."""

    credentials: dict[str, str]
    log: Callable[[], list[Request]]
    change: Callable[[], None]
    refused: Callable[[], int] = lambda: 0


def _endpoint(request: Request) -> str:
    """A request's endpoint with ids folded (``/v1/deals/{id}/flow``)."""
    path = re.sub(r"^/rest/\d+/[^/]+/", "/rest/", request.path)  # Bitrix24's webhook key
    path = re.sub(r"/\d+(?=/|$)", "/{id}", path)
    return f"{request.method} {path}"


@contextmanager
def _pipedrive(tiny: bool) -> Iterator[Company]:
    fake = pipedrive.FakePipedrive(page_limit=3 if tiny else 500)
    fake.api.start()
    try:
        def change() -> None:
            hire = fake.add_user("New Hire", "new@acme.example")
            fake.add_lead("Inbound call", owner=hire.id)
            fake.win_deal(2)
            fake.delete_deal(4)
            fake.move_deal(5, 3)
            fake.add_activity("call", 3, deal=5)
            fake.delete_activity(104)

        yield Company({"base_url": fake.url, "api_token": pipedrive.TOKEN,
                       "webhook_user": "", "webhook_password": ""},
                      lambda: list(fake.api.log), change)
    finally:
        fake.api.stop()


@contextmanager
def _amocrm(tiny: bool) -> Iterator[Company]:
    fake = amocrm.FakeAmoCrm(page_size=3 if tiny else 250).start()
    try:
        def change() -> None:
            fake.add_lead(7010, rep=1002, status=50011, price=15_000, company=9003,
                          utm="google")
            fake.move_lead(7005, amocrm.WON)
            fake.leads[7005]["price"] = 64_000
            fake.delete_lead(7003)
            fake.add_call(8007, 7010, rep=1002, direction="out", duration=240)
            fake.add_task(9506, "leads", 7010, rep=1002, kind=2, due=amocrm.now() - 60,
                          done=True)

        yield Company({"base_url": fake.url, "access_token": amocrm.TOKEN,
                       "webhook_secret": ""}, lambda: list(fake.api.log), change)
    finally:
        fake.stop()


@contextmanager
def _bitrix24(tiny: bool) -> Iterator[Company]:
    fake = bitrix24.FakeBitrix24(page_size=3 if tiny else 50,
                                 bucket=bitrix24.PortalBucket(per_second=FAST.rate_limit))
    fake.start()
    try:
        def change() -> None:
            fake.add_lead(18, rep=2, status="NEW", source="WEB")
            fake.deals[205]["OPPORTUNITY"] = "64000.00"
            fake.move_deal(205, "WON")
            fake.delete_deal(209)
            fake.delete_lead(12)
            fake.add_activity(314, kind=2, owner=(2, 205), rep=2, direction=2, seconds=240)

        yield Company({"webhook_url": fake.webhook_url, "outgoing_token": ""},
                      lambda: list(fake.requests()), change, lambda: len(fake.refused))
    finally:
        fake.stop()


@contextmanager
def _hubspot(tiny: bool) -> Iterator[Company]:
    fake = (hubspot.FakeHubSpot() if tiny
            else hubspot.FakeHubSpot(page_size=100, association_page=500)).start()
    try:
        yield Company(fake.credentials(), lambda: list(fake.api.log), fake.change_everything)
    finally:
        fake.stop()


COMPANIES = {"amocrm": _amocrm, "bitrix24": _bitrix24, "hubspot": _hubspot,
             "pipedrive": _pipedrive}


def measure(crm: str, tiny: bool, root: Path) -> Run:
    run = Run(crm, "tiny" if tiny else "real")
    with COMPANIES[crm](tiny) as company:
        settings = Settings(workspace=root / f"{crm}-{run.pages}")
        save_workspace_settings(settings, currency="EUR")
        settings = Settings(workspace=settings.workspace)
        CredentialStore(settings).put(crm, company.credentials)
        sync(settings, crm, options=FAST)
        full = company.log()
        company.change()
        sync(settings, crm, options=FAST)
        incremental = company.log()[len(full):]
        sync(settings, crm, options=FAST, full=True)
        run.resync = len(company.log()) - len(full) - len(incremental)
        run.full, run.incremental = len(full), len(incremental)
        run.full_endpoints = dict(Counter(map(_endpoint, full)).most_common())
        run.incremental_endpoints = dict(Counter(map(_endpoint, incremental)).most_common())
        run.refused = company.refused()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crm", choices=sorted(COMPANIES), action="append")
    parser.add_argument("--detail", action="store_true", help="requests per endpoint too")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="saleskpi-requests-") as tmp:
        for crm in args.crm or sorted(COMPANIES):
            for tiny in (False, True):
                runs.append(measure(crm, tiny, Path(tmp)))
    print(f"{'crm':<10} {'pages':<5} {'full':>5} {'incremental':>12} {'full again':>11} "
          f"{'refused':>8}")
    for run in runs:
        print(f"{run.crm:<10} {run.pages:<5} {run.full:>5} {run.incremental:>12} "
              f"{run.resync:>11} {run.refused:>8}")
    if args.detail:
        for run in runs:
            print(f"\n{run.crm}, {run.pages} pages")
            for name, counts in (("full", run.full_endpoints),
                                 ("incremental", run.incremental_endpoints)):
                print(f"  {name}: " + ", ".join(f"{e} {n}" for e, n in counts.items()))
    if args.json:
        args.json.write_text(json.dumps([vars(run) for run in runs], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
