"""The sovereignty and safety rules' settings: ``policy:``."""

from __future__ import annotations

import re

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from ..policy.model import Settings
from ..policy.rules import BY_ID
from .common import _Model, _check_label_key


class Policy(_Model):
    """The stack's sovereignty and safety policy settings (docs/sovereignty.md)."""

    area: Literal["france", "eu"] = "france"
    allowed_providers: tuple[Literal["ovh", "scaleway", "outscale", "existing", "baremetal"], ...] = (
        "ovh", "scaleway", "outscale", "existing", "baremetal")
    secnumcloud_only: bool = False
    required_labels: tuple[str, ...] = ("owner", "team", "cost-centre")
    # registries the admission policies accept images from (prefixes)
    allowed_registries: tuple[str, ...] = (
        "ghcr.io/infratech-souveraine/",
        "docker.io/vllm/",
        "vllm/",
    )
    levels: dict[str, Literal["advisory", "mandatory", "disabled"]] = Field(default_factory=dict)
    exceptions: dict[str, str] = Field(default_factory=dict)

    @field_validator("levels", "exceptions")
    @classmethod
    def _rule_ids(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        unknown = sorted(set(v) - set(BY_ID))
        if unknown:
            raise ValueError(f"unknown rule id(s) {', '.join(unknown)}; rules: {', '.join(BY_ID)}")
        if info.field_name == "exceptions":
            short = [k for k, reason in v.items() if len(reason.strip()) < 20]
            if short:
                raise ValueError(f"an exception needs its reason written out (20 characters or more): {', '.join(short)}")
        return v

    @field_validator("allowed_registries")
    @classmethod
    def _registries(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in v:
            if not re.fullmatch(r"[a-z0-9.-]+(:\d+)?/([a-z0-9._-]+/)*", prefix) and not re.fullmatch(r"[a-z0-9._-]+/", prefix):
                raise ValueError(f"{prefix!r} must be a registry or repository prefix ending in '/', e.g. ghcr.io/my-org/")
        return v

    @field_validator("required_labels")
    @classmethod
    def _labels(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for key in v:
            _check_label_key(key)
        return v

    def settings(self, budget_enforced: bool = False) -> Settings:
        """The rules' settings. ``budget_enforced`` (a stack key) makes the budget rule mandatory
        unless ``levels`` says otherwise: the one place a budget is enforced."""
        levels = {"budget": "mandatory", **self.levels} if budget_enforced else dict(self.levels)
        return Settings(
            area=self.area,
            allowed_providers=tuple(self.allowed_providers),
            secnumcloud_only=self.secnumcloud_only,
            required_labels=tuple(self.required_labels),
            levels=levels,
            exceptions=dict(self.exceptions),
        )
