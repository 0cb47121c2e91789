"""CRM connections: connect (credentials, tested, encrypted) and sync."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import (
    ReportFormat,
    app,
    err,
    fail,
    out,
    progress_on,
    service,
    state,
    write,
)

if TYPE_CHECKING:
    import socket

    from saleskpi.domain.settings import Settings


@app.command("connect")
def connect_command(
    crm: Annotated[str, typer.Argument(help="amocrm, bitrix24, hubspot or pipedrive.")],
    values: Annotated[
        list[str] | None,
        typer.Option("--set", help="FIELD=VALUE for a connection field; missing ones are "
                     "asked for (secrets without echo)."),
    ] = None,
) -> None:
    """Store a CRM's credentials (encrypted in the workspace) after testing them.

    Example: saleskpi connect pipedrive --set base_url=https://acme.pipedrive.com
    """
    from saleskpi.domain.errors import InvalidQuery, SalesKpiError
    from saleskpi.service.syncs import connect, connection_fields

    try:
        fields = connection_fields(crm)
    except InvalidQuery as exc:
        raise fail(exc.message) from None
    given = dict(v.split("=", 1) for v in (values or []) if "=" in v)
    credentials: dict[str, str] = {}
    for field in fields:
        if field.name in given:
            credentials[field.name] = given[field.name]
        elif field.required and not field.default:
            credentials[field.name] = typer.prompt(field.help, hide_input=field.secret)
        else:
            credentials[field.name] = field.default
    try:
        with err.status(_("Testing the connection…")):
            account = connect(state.settings, crm, credentials)
    except SalesKpiError as exc:
        raise fail(exc.message, code=1) from None
    out.print(_("Connected to {crm}: {account}. Credentials are stored encrypted; run "
                "'saleskpi sync {crm}'.", crm=crm, account=account), highlight=False)


@app.command("sync")
def sync_command(
    crm: Annotated[str | None, typer.Argument(help="One CRM; all connected ones if omitted.")]
    = None,
    full: Annotated[bool, typer.Option("--full", help="Reload everything, not only changes.")]
    = False,
    status_only: Annotated[
        bool, typer.Option("--status", help="Show each CRM's sync status; sync nothing.")
    ] = False,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Bring CRM data up to date: a full load first, then only what changed.

    Example: saleskpi sync pipedrive   (or: saleskpi sync --status)
    """
    from saleskpi.domain.errors import SalesKpiError
    from saleskpi.service.syncs import connected_crms, run_sync
    from saleskpi.views.text import to_json

    if status_only:
        _print_sync_status(crm, format)
        return
    try:
        names = [crm] if crm else connected_crms(state.settings)
    except SalesKpiError as exc:
        raise fail(exc.message, code=1) from None
    if not names:
        raise fail(_("no CRM is connected: run 'saleskpi connect CRM' first"))
    reports = []
    for name in names:
        try:
            with err.status(_("Syncing {crm}…", crm=name)) as status:
                report = run_sync(state.settings, name, full=full,
                                  progress=progress_on(status))
        except SalesKpiError as exc:
            raise fail(exc.message, code=1) from None
        reports.append(report)
        if format is ReportFormat.table:
            counts = ", ".join(f"{entity} +{c.inserted} ~{c.updated}"
                               for entity, c in report.entities.items())
            out.print(_("{crm}: {batches} batches stored ({counts}); deleted: {deleted}",
                        crm=name, batches=report.batches, counts=counts or "-",
                        deleted=report.deleted or "-"), highlight=False)
    if format is ReportFormat.json:
        write(to_json([r.to_dict() for r in reports]))


def _print_sync_status(crm: str | None, format: ReportFormat) -> None:
    from rich.table import Table

    from saleskpi.views.base import LOCAL
    from saleskpi.views.syncs import SyncStatusParams, sync_status
    from saleskpi.views.text import to_json

    view = sync_status(service(), LOCAL, SyncStatusParams(crm=crm))
    if format is ReportFormat.json:
        write(to_json(view.to_json()))
        return
    table = Table(header_style="bold")
    for title in (_("CRM"), _("Connected"), _("Last sync (UTC)"), _("Cursor"),
                  _("Last logged import")):
        table.add_column(title)
    for status in view.crms:
        run = status.last_run
        counts = "" if run is None else "{at}: {counts}".format(
            at=run.finished_at.strftime("%Y-%m-%d %H:%M"),
            counts=", ".join(f"{entity} +{c.get('inserted', 0)} ~{c.get('updated', 0)}"
                             for entity, c in run.entities.items()) or "-")
        table.add_row(status.crm, _("yes") if status.connected else _("no"),
                      status.last_sync.strftime("%Y-%m-%d %H:%M:%S") if status.last_sync
                      else "—",
                      ", ".join(f"{k}={v}" for k, v in status.cursor.items()) or "—",
                      counts or "—")
    out.print(table)


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    sync_every: Annotated[
        float | None,
        typer.Option("--sync-every", help="Minutes between CRM syncs (0: none; default from "
                     "settings, 15)."),
    ] = None,
    secure_cookies: Annotated[
        bool,
        typer.Option("--secure-cookies", help="Send the session cookie over HTTPS only "
                     "(Secure): use it behind TLS."),
    ] = False,
) -> None:
    """Run the HTTP server: the dashboard, the API, webhooks for CRMs, scheduled syncs,
    alerts (alerts.yaml) and reports (reports.yaml).

    Example: saleskpi serve --port 8000 --sync-every 10 --secure-cookies
    """
    from saleskpi.surfaces.server import listen

    run_server(state.settings, listen(host, port), host=host, port=port,
               sync_every=sync_every, secure_cookies=secure_cookies)


def run_server(settings: Settings, sock: socket.socket, *, host: str, port: int,
               sync_every: float | None = None, secure_cookies: bool = False) -> None:
    """Serve on ``sock`` (bound by ``listen``: a taken port is an error before
    "listening") until stopped, with scheduled syncs and reports."""
    from saleskpi.surfaces.server import background_jobs, create_app, serve

    app = create_app(settings, secure_cookies=secure_cookies, refresh=True)
    jobs = background_jobs(app, settings, sync_minutes=sync_every if sync_every is not None
                           else settings.sync_every_minutes)
    jobs.start()
    out.print(_("saleskpi is listening on http://{host}:{port}", host=host, port=port),
              highlight=False)
    try:
        serve(app, host=host, port=port, sock=sock)
    finally:
        jobs.stop()
        sock.close()
