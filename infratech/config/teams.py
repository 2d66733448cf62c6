"""Teams: namespace, groups, GPU quotas and borrowing, as ``teams:`` lists them."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field, ValidationInfo, field_validator

from .common import _Model, _dns_label
from .platform import PLATFORM_NAMESPACES


class Team(_Model):
    name: str
    gpu_quota: dict[str, Annotated[int, Field(strict=True)]] = Field(default_factory=dict)
    # GPUs of each model the team may borrow from the cohort beyond its quota (unset: no limit)
    gpu_borrowing_limit: dict[str, Annotated[int, Field(strict=True, ge=0)]] = Field(default_factory=dict)
    fair_share_weight: int = Field(default=1, ge=0, le=1000, strict=True)
    # identity-provider groups whose members work in the team's namespace
    groups: tuple[str, ...] = ()
    # CPU cores and memory the namespace's pods may request in total (unset: what the team's GPU
    # ceiling occupies on the GPU nodes plus an allowance for CPU work, platform/quotas.py)
    cpu_quota: Optional[int] = Field(default=None, ge=1, le=100_000, strict=True)
    memory_quota_gib: Optional[int] = Field(default=None, ge=1, le=1_000_000, strict=True)
    # GiB of persistent volumes the namespace may claim (datasets and checkpoints live in the object store)
    storage_quota_gib: int = Field(default=500, ge=0, le=1_000_000, strict=True)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        _dns_label(v, "team name", 40)
        if v in PLATFORM_NAMESPACES:
            raise ValueError(f"{v!r} is a namespace the platform uses; the team's namespace would be shared with it")
        return v

    @field_validator("gpu_quota", "gpu_borrowing_limit")
    @classmethod
    def _quota(cls, v: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        models = (info.context or {}).get("pool_gpu_models")
        for model, count in v.items():
            if count < 0:
                raise ValueError(f"quota for {model!r} must be >= 0, got {count}")
            if models is not None and model not in models:
                allowed = ", ".join(sorted(models)) or "none: no pool of this stack has GPUs"
                raise ValueError(f"GPU model {model!r} is not provided by any pool of this stack; allowed: {allowed}")
        return v

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for group in v:
            if not group or len(group) > 253 or any(c.isspace() for c in group):
                raise ValueError(f"group {group!r} must be a non-empty name without spaces, as the identity provider sends it")
        return v

    @property
    def namespace(self) -> str:
        return self.name
