"""Thresholds of the gate: one YAML file per model family, read once, typed, frozen.

    suite: cpu_smoke                 # results must come from this evaluation suite
    min_scores:                      # "task/metric": lowest acceptable value
      infratech_fr/acc: 0.30
    max_perplexity:                  # "name" means "name/perplexity"; or a full "task/metric"
      heldout: 20
    max_regression:                  # worst allowed change against the last promoted checkpoint,
      infratech_fr/acc: 0.02         #   in the metric's units (0.02 = two points of accuracy)
      heldout/perplexity: 5%         #   or relative to the baseline ("5%")
    allow_subset: false              # results computed with --limit cannot promote
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import UserError
from ..files import shipped_names, shipped_yaml

THRESHOLDS_DIR = Path(__file__).resolve().parent / "thresholds"


class Regression(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    amount: float = Field(ge=0)
    relative: bool = False

    def describe(self) -> str:
        return f"{self.amount * 100:g}%" if self.relative else f"{self.amount:g}"


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    suite: Optional[str] = None
    min_scores: dict[str, float] = {}
    max_perplexity: dict[str, float] = {}
    max_regression: dict[str, Regression] = {}
    allow_subset: bool = False

    @field_validator("max_perplexity", mode="after")
    @classmethod
    def _full_names(cls, value: dict[str, float]) -> dict[str, float]:
        return {(k if "/" in k else f"{k}/perplexity"): v for k, v in value.items()}

    @field_validator("max_regression", mode="before")
    @classmethod
    def _amounts(cls, value):
        out = {}
        for name, amount in (value or {}).items():
            if isinstance(amount, str) and amount.strip().endswith("%"):
                try:
                    out[name] = {"amount": float(amount.strip()[:-1]) / 100, "relative": True}
                except ValueError:
                    raise ValueError(f"{name}: {amount!r} is not a percentage like '5%'") from None
            else:
                out[name] = {"amount": amount, "relative": False}
        return out


def available() -> list[str]:
    return shipped_names(THRESHOLDS_DIR)


def load(name_or_path: str) -> tuple[Thresholds, dict]:
    """The thresholds and where they came from (path and sha256, recorded in the verdict)."""
    path = shipped_yaml(name_or_path, THRESHOLDS_DIR, "thresholds")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw) or {}
        return Thresholds.model_validate(data), {"path": str(path), "sha256": hashlib.sha256(raw).hexdigest(),
                                                 "content": data}
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or 'thresholds'}: {e['msg']}" for e in exc.errors()]
        raise UserError(f"thresholds {path}: " + "; ".join(lines)) from None
    except yaml.YAMLError as exc:
        raise UserError(f"thresholds {path}: not valid YAML ({exc})") from None
