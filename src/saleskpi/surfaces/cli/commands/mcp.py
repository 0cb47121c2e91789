"""MCP for AI assistants over stdio: ``saleskpi mcp``, as the user of an API token."""

from __future__ import annotations

from typing import Annotated

import typer

from saleskpi.domain.errors import EXIT_CODE, ErrorKind
from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import app, fail, state


@app.command("mcp")
def mcp_command(
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="SALESKPI_TOKEN", show_envvar=True,
                     help="API token of the user the assistant acts for "
                     "('saleskpi user token USERNAME'); their scope applies."),
    ] = None,
) -> None:
    """Serve the KPIs to an AI assistant (MCP over stdin/stdout); see docs/mcp.md.

    The assistant's client starts this command; it answers until the client closes it.
    Tools: list_kpis, explain_kpi, query_kpis, funnel, comparison, leaderboard,
    plan_vs_actual, reverse_plan.

    Example: SALESKPI_TOKEN=skpi_... saleskpi --workspace ./saleskpi-data mcp
    """
    refused = EXIT_CODE[ErrorKind.unauthenticated]
    if not token or not token.strip():
        raise fail(_("an API token is needed: pass --token or set SALESKPI_TOKEN "
                     "(issue one with 'saleskpi user token USERNAME')"), refused)
    from saleskpi.service.auth import principal_for_token

    principal = principal_for_token(state.settings, token.strip())
    if principal is None:
        raise fail(_("the API token is not valid (issue one with 'saleskpi user token "
                     "USERNAME')"), refused)
    from saleskpi.service.core import SalesKpiService
    from saleskpi.surfaces.mcp.server import run_stdio

    run_stdio(SalesKpiService(state.settings), principal)
