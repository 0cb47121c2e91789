"""REST v1: alerts (the same JSON as ``saleskpi alerts ... --format json``).

Everyone lists the rules and the alerts in their scope, backtests, and sees the
silences about them; a team lead silences their own team; managers change rules,
evaluate now and read the audit log. Changes need the session's CSRF token (or a
bearer token).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.surfaces.http.deps import ManagerDep, ServiceDep, UserDep, csrf_header, manager
from saleskpi.surfaces.http.params import IdPath
from saleskpi.views.alert_backtest import BacktestParams, BacktestView, backtest
from saleskpi.views.alert_silences import (
    NewSilence,
    SilenceEntry,
    SilenceId,
    SilencesParams,
    SilencesView,
    add_silence,
    remove_silence,
    silences,
)
from saleskpi.views.alerts import (
    AlertsParams,
    AlertsView,
    EvaluateParams,
    EvaluationView,
    LogParams,
    LogView,
    RuleParams,
    RulesSaved,
    RulesText,
    alert_log,
    alerts,
    delete_rule,
    evaluate,
    put_rule,
    rules_text,
    save_rules_text,
    test_rule,
)

router = APIRouter(prefix="/api/v1/alerts")
CHANGES = [Depends(manager), Depends(csrf_header)]
RuleName = Annotated[str, Path(max_length=64)]


class RulesTextBody(BaseModel):
    text: str = Field(max_length=512 * 1024, description="The whole alerts.yaml.")


@router.get("", response_model=AlertsView)
def list_alerts(user: UserDep, svc: ServiceDep, resolved: bool = False) -> dict[str, Any]:
    """The rules, and the alerts pending or firing in the caller's scope, with why."""
    return alerts(svc, user, AlertsParams(resolved=resolved)).to_json()


@router.get("/rules.yaml", response_model=RulesText)
def get_rules_text(user: ManagerDep, svc: ServiceDep) -> dict[str, Any]:
    """alerts.yaml as it is (managers)."""
    return rules_text(svc, user).to_json()


@router.put("/rules.yaml", response_model=RulesSaved, dependencies=CHANGES)
def put_rules_text(body: RulesTextBody, user: ManagerDep, svc: ServiceDep) -> dict[str, Any]:
    """Replace alerts.yaml; refused (400, naming the rule and field) unless all is valid."""
    return save_rules_text(svc, user, body.text).to_json()


@router.put("/rules/{name}", response_model=RulesSaved, dependencies=CHANGES)
def put_one_rule(name: RuleName, body: RuleParams, user: ManagerDep,
                 svc: ServiceDep) -> dict[str, Any]:
    """Add or replace one rule (the body's ``definition``, as in alerts.yaml)."""
    definition = {**body.definition, "name": body.definition.get("name", name)}
    if definition["name"] != name:
        raise InvalidQuery(_("the rule's name {given!r} differs from the address's {name!r}",
                             given=definition["name"], name=name), code="bad_alert_rule")
    return put_rule(svc, user, RuleParams(definition=definition)).to_json()


@router.delete("/rules/{name}", response_model=RulesSaved, dependencies=CHANGES)
def delete_one_rule(name: RuleName, user: ManagerDep, svc: ServiceDep) -> dict[str, Any]:
    """Delete a rule and its alerts' states (their log stays)."""
    return delete_rule(svc, user, name).to_json()


@router.get("/rules/{name}/test", response_model=EvaluationView)
def test_one_rule(name: RuleName, user: ManagerDep, svc: ServiceDep) -> dict[str, Any]:
    """Evaluate the rule now: what would change and whom it would tell; nothing is stored
    or sent."""
    return test_rule(svc, user, EvaluateParams(rule=name)).to_json()


@router.get("/rules/{name}/backtest", response_model=BacktestView,
            response_model_by_alias=True)
def backtest_rule(name: RuleName, user: UserDep, svc: ServiceDep,
                  start: Annotated[dt.date | None, Query(alias="from")] = None,
                  end: Annotated[dt.date | None, Query(alias="to")] = None,
                  range: Annotated[str | None, Query(description="last_month (default), "
                                                     "mtd, wtd, qtd or ytd.")] = None
                  ) -> dict[str, Any]:
    """How often a saved rule would have fired over past days, and on what (in the
    caller's scope)."""
    params = BacktestParams.model_validate({"rule": name, "from": start, "to": end,
                                            "range": range})
    return backtest(svc, user, params).to_json()


@router.post("/backtest", response_model=BacktestView, response_model_by_alias=True,
             dependencies=[Depends(csrf_header)])
def backtest_draft(body: BacktestParams, user: UserDep, svc: ServiceDep) -> dict[str, Any]:
    """The backtest of a rule before it is saved (``definition``) or of a saved one
    (``rule``)."""
    return backtest(svc, user, body).to_json()


@router.post("/evaluate", response_model=EvaluationView, dependencies=CHANGES)
def evaluate_now(body: EvaluateParams, user: ManagerDep, svc: ServiceDep) -> dict[str, Any]:
    """Evaluate now (one rule or all), store the states and send the notices."""
    return evaluate(svc, user, body).to_json()


@router.get("/log", response_model=LogView)
def read_log(user: ManagerDep, svc: ServiceDep, rule: str | None = None,
             limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
    """The audit log, newest first: each change of an alert's state and each notice."""
    return alert_log(svc, user, LogParams(rule=rule, limit=limit)).to_json()


@router.get("/silences", response_model=SilencesView)
def list_silences(user: UserDep, svc: ServiceDep, all: bool = False) -> dict[str, Any]:
    """Silences on now or to come (``all``: also past ones), those the caller may see."""
    return silences(svc, user, SilencesParams(all=all)).to_json()


@router.post("/silences", response_model=SilenceEntry, status_code=201,
             dependencies=[Depends(csrf_header)])
def new_silence(body: NewSilence, user: UserDep, svc: ServiceDep) -> dict[str, Any]:
    """Silence a rule, a rep or a team for a while (a team lead: their own team)."""
    return add_silence(svc, user, body).model_dump(mode="json")


@router.delete("/silences/{silence_id}", response_model=SilenceEntry,
               dependencies=[Depends(csrf_header)])
def end_silence(silence_id: IdPath, user: UserDep, svc: ServiceDep) -> dict[str, Any]:
    """End a silence now."""
    return remove_silence(svc, user, SilenceId(id=silence_id)).model_dump(mode="json")
