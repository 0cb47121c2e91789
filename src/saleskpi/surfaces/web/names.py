"""The words of the vocabulary as pages show them: catalogue groups and kinds, slices,
period grains, source names. Keys stay in links and downloads; these are labels only.

A key without a translation here (a group a workspace made up, a source named on
import) is shown as it is: it is the user's own word.
"""

from __future__ import annotations

from saleskpi.surfaces.web.i18n import _


def group_name(group: str) -> str:
    names = {"activity": _("activity"), "forecast": _("forecast"), "funnel": _("funnel"),
             "money": _("money"), "quality": _("quality"), "speed": _("speed"),
             "other": _("other")}
    return names.get(group, group)


def kind_name(kind: str) -> str:
    names = {"simple": _("simple"), "ratio": _("ratio"), "share": _("share"),
             "derived": _("derived")}
    return names.get(kind, kind)


def dim_name(dim: str) -> str:
    names = {"rep": _("Rep"), "team": _("Team"), "source": _("Source"),
             "segment": _("Segment"), "product": _("Product"), "pipeline": _("Pipeline")}
    return names.get(dim, dim)


def period_name(period: str) -> str:
    names = {"day": _("day"), "week": _("week"), "month": _("month"),
             "quarter": _("quarter"), "year": _("year"), "all": _("whole range")}
    return names.get(period, period)


def source_name(source: str | None) -> str | None:
    """A source's name: ours (the demo company, a target set by hand) translated, a
    source named on import as it was named."""
    names = {"demo": _("demo"), "manual": _("set by hand")}
    return names.get(source, source) if source else source


def stage_name(stage: str) -> str:
    """A funnel stage: the canonical keys (the demo's and the file format's) translated;
    a stage named in the CRM ("Переговоры", "Closed Won") as the CRM names it."""
    names = {"new": _("new"), "qualified": _("qualified"), "proposal": _("proposal"),
             "negotiation": _("negotiation"), "won": _("won"), "lost": _("lost")}
    return names.get(stage, stage)


def pipeline_name(pipeline: str | None) -> str:
    """A pipeline: the demo's two translated, any other as the CRM names it."""
    if not pipeline:
        return _("all pipelines")
    names = {"main": _("main"), "partners": _("partners")}
    return names.get(pipeline, pipeline)
