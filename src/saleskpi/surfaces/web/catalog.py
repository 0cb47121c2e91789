"""The KPI catalogue: every KPI with its definition; managers add and edit their own.

Saving goes through the service (``SalesKpiService.put_kpi``): the whole catalogue
is loaded with the new definition before anything is written.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Form
from starlette.responses import RedirectResponse, Response

from saleskpi.domain.errors import SalesKpiError
from saleskpi.surfaces.web.deps import ManagerPageDep, Page, PageDep
from saleskpi.surfaces.web.formatting import unit_name
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.kpi_builder import (
    GROUPS,
    KINDS,
    UNITS,
    Draft,
    Shown,
    measures,
    preview,
)
from saleskpi.surfaces.web.names import group_name, kind_name
from saleskpi.surfaces.web.tables import Cell, Column, DataTable, Row, text_cell

router = APIRouter(route_class=WebRoute)
SESSION_FLASH = "web_flash"
KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_DEFINITION = 20_000
MAX_NAME = 200
EXAMPLE = "kind: derived\nname: {en: Won deals x2, ru: ..., uk: ...}\nformula: deals_won * 2\n"


def catalog_table(page: Page) -> DataTable:
    user_keys = {str(i.get("key")) for i in page.service.user_kpis()}
    columns = [Column("key", _("Key")), Column("name", _("Name")), Column("group", _("Group")),
               Column("kind", _("Kind")), Column("unit", _("Unit")),
               Column("higher_is_better", _("Higher is better")),
               Column("user_defined", _("Your own")), Column("description", _("Description"))]
    rows = []
    for spec in sorted(page.service.catalog.kpis.values(), key=lambda s: (s.group, s.key)):
        own = spec.key in user_keys
        rows.append(Row([
            Cell(spec.key, spec.key, href=f"/catalog?edit={spec.key}" if own and
                 page.user.can_manage else None, verbatim=True),
            text_cell(spec.display_name(page.lang)),
            Cell(spec.group, group_name(spec.group)), Cell(spec.kind, kind_name(spec.kind)),
            Cell(spec.unit, unit_name(spec.unit)),
            Cell(spec.higher_is_better, _("yes") if spec.higher_is_better else _("no")),
            Cell(own, _("yes") if own else ""),
            text_cell(spec.display_description(page.lang)),
        ]))
    return DataTable("catalog", _("KPI catalogue"), columns, rows)


def _page(page: Page, *, key: str = "", definition: str = "", error: str = "",
          status: int = 200, draft: Draft | None = None, preview: Shown | None = None
          ) -> Response:
    table = catalog_table(page)
    flash = page.request.session.pop(SESSION_FLASH, "")
    return page.render("catalog.html", status=status, tables=[table], table=table, key=key,
                       definition=definition or EXAMPLE, error=error,
                       flash=flash if isinstance(flash, str) else "",
                       draft=draft or Draft(), preview=preview, units=UNITS, groups=GROUPS,
                       kinds=KINDS, counts=measures(page, "count"), sums=measures(page, "sum"),
                       all_kpis=sorted(page.service.catalog.kpis), title=_("KPI catalogue"))


def show(page: Page, *, draft: Draft, error: str = "", preview: Shown | None = None,
         status: int = 200) -> Response:
    """The catalogue with the KPI form filled in (``kpi_builder``): a preview or an error."""
    return _page(page, draft=draft, error=error, preview=preview, status=status)


@router.get("/catalog")
def catalog_page(page: PageDep, edit: str | None = None) -> Response:
    definition = ""
    if edit and page.user.can_manage:
        found = next((i for i in page.service.user_kpis()
                      if i.get("key") == edit), None)
        if found is not None:
            body = {k: v for k, v in found.items() if k != "key"}
            definition = yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
    return _page(page, key=(edit or "") if definition else "", definition=definition)


@router.post("/catalog")
def save_kpi(page: ManagerPageDep, csrf: Annotated[str, Form(max_length=200)] = "",
             key: Annotated[str, Form(max_length=200)] = "",
             definition: Annotated[str, Form(max_length=MAX_DEFINITION)] = "") -> Response:
    page.check_csrf(csrf)
    key = key.strip()
    if not KEY.match(key):
        return _page(page, key=key, definition=definition, status=400, error=_(
            "The key must start with a letter and use only a-z, 0-9 and _."))
    try:
        parsed: Any = yaml.safe_load(definition)
    except yaml.YAMLError as exc:
        return _page(page, key=key, definition=definition, status=400,
                     error=_("The definition is not valid YAML: {problem}", problem=str(exc)))
    if not isinstance(parsed, dict):
        return _page(page, key=key, definition=definition, status=400,
                     error=_("The definition must be YAML fields, such as kind: and name:."))
    try:
        page.service.put_kpi(key, parsed)
    except SalesKpiError as exc:
        return _page(page, key=key, definition=definition, status=400,
                     error=exc.message or _("The definition is not valid."))
    page.request.session[SESSION_FLASH] = _("KPI {key} saved.", key=key)
    return RedirectResponse("/catalog", status_code=303)


@router.post("/catalog/delete")
def delete_kpi(page: ManagerPageDep, csrf: Annotated[str, Form(max_length=200)] = "",
               key: Annotated[str, Form(max_length=200)] = "") -> Response:
    page.check_csrf(csrf)
    if any(i.get("key") == key for i in page.service.user_kpis()):
        try:
            page.service.delete_kpi(key)
        except SalesKpiError as exc:  # another KPI still refers to it
            return _page(page, status=400, error=exc.message)
        page.request.session[SESSION_FLASH] = _("KPI {key} deleted.", key=key)
    return RedirectResponse("/catalog", status_code=303)


@router.post("/catalog/build")
def build_kpi(page: ManagerPageDep, csrf: Annotated[str, Form(max_length=MAX_NAME)] = "",
              key: Annotated[str, Form(max_length=MAX_NAME)] = "",
              name_en: Annotated[str, Form(max_length=MAX_NAME)] = "",
              name_ru: Annotated[str, Form(max_length=MAX_NAME)] = "",
              name_uk: Annotated[str, Form(max_length=MAX_NAME)] = "",
              numerator: Annotated[str, Form(max_length=MAX_NAME)] = "",
              denominator: Annotated[str, Form(max_length=MAX_NAME)] = "",
              condition: Annotated[str, Form(max_length=MAX_NAME)] = "",
              unit: Annotated[str, Form(max_length=MAX_NAME)] = "ratio",
              group: Annotated[str, Form(max_length=MAX_NAME)] = "other",
              higher: Annotated[str, Form(max_length=10)] = "",
              kind: Annotated[str, Form(max_length=20)] = "rate",
              measure: Annotated[str, Form(max_length=MAX_NAME)] = "",
              action: Annotated[str, Form(max_length=20)] = "preview") -> Response:
    page.check_csrf(csrf)
    chosen = kind if kind in KINDS else "rate"
    draft = Draft(key.strip(), {"en": name_en, "ru": name_ru, "uk": name_uk}, numerator,
                  denominator, condition, unit if unit in UNITS else "ratio",
                  group if group in GROUPS else "other", bool(higher), chosen, measure)
    error = draft.problem(page)
    if not KEY.match(draft.key):
        error = _("The key must start with a letter and use only a-z, 0-9 and _.")
    if error:
        return show(page, draft=draft, error=error, status=400)
    if action != "save":
        try:
            shown = preview(page, draft)
        except SalesKpiError as exc:  # a filter the catalogue refuses, a bad column...
            return show(page, draft=draft, error=exc.message or _(
                "The definition is not valid."), status=400)
        return show(page, draft=draft, preview=shown)
    try:
        page.service.put_kpi(draft.key, draft.definition(page))
    except SalesKpiError as exc:
        return show(page, draft=draft, error=exc.message or _("The definition is not valid."),
                    status=400)
    page.request.session[SESSION_FLASH] = _("KPI {key} saved.", key=draft.key)
    return RedirectResponse("/catalog", status_code=303)
