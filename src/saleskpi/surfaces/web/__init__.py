"""The web dashboard: server-rendered pages over the same service as the CLI and the API.

Every page is scoped through ``Principal.scope`` by calling ``SalesKpiService`` (or the
compare, funnel and plans modules, which call it), so a number on a page equals the
CLI's and the API's for the same filters. See docs/web.md.
"""

from __future__ import annotations

from saleskpi.surfaces.web.http import StaticAssets, static_files
from saleskpi.surfaces.web.routes import router

__all__ = ["StaticAssets", "router", "static_files"]
