"""The MCP server: the tools of ``saleskpi.surfaces.mcp.tools``, as one authenticated user.

Built on the SDK's low-level ``Server``: the tool list and each call come from the
declarative registry, so the server itself knows no view. Every call runs with the
caller the transport authenticated (``caller_of``: stdio has one user for the whole
process, HTTP one per request), in a worker thread (views compute in DuckDB).

Errors: a ``SalesKpiError`` from a view, or arguments the view's params refuse, become
a tool error (``isError``) whose text is ``<code>: <message>``; anything else is
logged here and answered with a bare ``internal`` error, never a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.i18n import _
from saleskpi.service.auth import Principal
from saleskpi.service.core import SalesKpiService
from saleskpi.surfaces.mcp.tools import Tool, ToolError, available_tools, call, error_text

log = logging.getLogger("saleskpi.surfaces.mcp")

NAME = "saleskpi"
INSTRUCTIONS = (
    "Sales KPIs from the company's CRM data, the same numbers as the saleskpi dashboard "
    "and CLI. Find KPI keys with list_kpis, then query_kpis (slices, periods, filters), "
    "funnel, comparison, leaderboard or the plan tools. Every answer carries the "
    "definitions of the KPIs it used; quote them when you explain a number. You see only "
    "what your user may see (a rep: their own figures)."
)

CallerOf = Callable[[ServerRequestContext[Any, Any]], Principal]


def build_server(service: SalesKpiService, caller_of: CallerOf) -> Server[Any]:
    """An MCP server over ``service``; ``caller_of(ctx)`` says who asks."""
    from saleskpi import __version__

    tools = available_tools()
    described = [_describe(t) for t in tools.values()]

    async def list_tools(_ctx: ServerRequestContext[Any, Any],
                         _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[t.model_copy(deep=True) for t in described])

    async def call_tool(ctx: ServerRequestContext[Any, Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = tools.get(params.name)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}; the tools are "
                           + ", ".join(tools))
        try:
            caller = caller_of(ctx)
            data = await anyio.to_thread.run_sync(
                partial(call, tool, service, caller, params.arguments))
        except (ToolError, SalesKpiError) as exc:
            return _error(error_text(exc))
        except Exception:
            log.exception("MCP tool %s failed", tool.name)
            return _error("internal: " + _("something went wrong; it has been logged"))
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(data, ensure_ascii=False))],
            structured_content=data)

    return Server(NAME, version=__version__, title="saleskpi", instructions=INSTRUCTIONS,
                  get_tool_input_schema=lambda name: (
                      tools[name].input_schema() if name in tools else None),
                  on_list_tools=list_tools, on_call_tool=call_tool)


def _describe(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name, title=tool.spec.title, description=tool.spec.description,
        input_schema=tool.input_schema(), output_schema=tool.output_schema(),
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False))


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


async def serve_stdio(service: SalesKpiService, caller: Principal) -> None:
    """Answer one MCP client on stdin/stdout until it closes them, as ``caller``."""
    server = build_server(service, lambda _ctx: caller)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def run_stdio(service: SalesKpiService, caller: Principal) -> None:
    anyio.run(serve_stdio, service, caller)
