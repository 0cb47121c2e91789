"""The optional ``<workspace>/funnel.yaml``: stage order per pipeline, won/lost stage names.

Without it the order of a pipeline's stages is learned from the data (see
``saleskpi.engine.funnel.stage_orders``) and stages called won or lost (any
letter case, also "closed won" / "closed lost") close a deal.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.yaml_files import YamlError, kept_yaml_dir, read_yaml

FUNNEL_FILE = "funnel.yaml"
DEFAULT_WON = ("won", "closed won", "closedwon")
DEFAULT_LOST = ("lost", "closed lost", "closedlost")


class FunnelError(InvalidQuery):
    """A funnel request or configuration the user can fix."""
    default_code = "bad_funnel"


class FunnelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipelines: dict[str, list[str]] = Field(
        default_factory=dict,
        description="pipeline name: its stages in order (won and lost excluded)",
    )
    won: list[str] = Field(default_factory=lambda: list(DEFAULT_WON),
                           description="stage names that mean the deal was won")
    lost: list[str] = Field(default_factory=lambda: list(DEFAULT_LOST),
                            description="stage names that mean the deal was lost")

    def won_names(self) -> list[str]:
        return sorted({w.strip().lower() for w in self.won})

    def lost_names(self) -> list[str]:
        return sorted({w.strip().lower() for w in self.lost})

    def is_terminal(self, stage: str) -> bool:
        word = stage.strip().lower()
        return word in self.won_names() or word in self.lost_names()


def load_funnel_config(workspace: Path) -> FunnelConfig:
    """``<workspace>/funnel.yaml`` if there is one, else the defaults."""
    path = workspace / FUNNEL_FILE
    if not path.is_file():
        return FunnelConfig()
    try:
        data = read_yaml(path, keep_in=kept_yaml_dir(workspace)) or {}
        return FunnelConfig.model_validate(data)
    except YamlError as exc:
        raise FunnelError(str(exc)) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise FunnelError(f"{path}: {problems}") from None
