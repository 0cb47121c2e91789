"""Jinja2 templates with autoescaping everywhere, and the page chrome's helpers."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse

from saleskpi.surfaces.web.cells import cells_html
from saleskpi.surfaces.web.formatting import sentence, unit_name
from saleskpi.surfaces.web.i18n import _, language
from saleskpi.surfaces.web.names import dim_name, group_name, kind_name, period_name, source_name


@cache
def environment() -> Environment:
    # autoescape=True, not select_autoescape: every template is HTML, whatever its name.
    env = Environment(loader=PackageLoader("saleskpi.surfaces.web", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["_"] = _
    env.filters["sentence"] = sentence
    env.globals["cells_html"] = cells_html
    env.globals |= {"dim_name": dim_name, "group_name": group_name, "kind_name": kind_name,
                    "period_name": period_name, "source_name": source_name,
                    "unit_name": unit_name}
    # Each language by its own name: a reader who cannot read the page still finds theirs.
    env.globals["languages"] = (("en", "English"), ("ru", "Русский"), ("uk", "Українська"))
    return env


def render(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    html = environment().get_template(template).render(lang=language(), **context)
    return HTMLResponse(html, status_code=status)
