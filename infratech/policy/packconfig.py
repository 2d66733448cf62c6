"""The Pulumi policy pack's configuration (``--policy-pack-config``), without the pack's SDK: the
CLI writes it (``infratech policy-config``) on machines that have only what planning needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import Settings
from .rules import RULES


def settings_from(config: Mapping[str, Any]) -> Settings:
    defaults = Settings()
    return Settings(
        area=config.get("area", defaults.area),
        allowed_providers=tuple(config.get("allowed_providers", defaults.allowed_providers)),
        secnumcloud_only=bool(config.get("secnumcloud_only", defaults.secnumcloud_only)),
        required_labels=tuple(config.get("required_labels", defaults.required_labels)),
        mirror=config.get("mirror", defaults.mirror),
    )


def pack_config(settings: Settings) -> dict[str, Any]:
    """The ``--policy-pack-config`` JSON that gives the pack a stack's settings and levels."""
    shared = {
        "area": settings.area,
        "allowed_providers": list(settings.allowed_providers),
        "secnumcloud_only": settings.secnumcloud_only,
        "required_labels": list(settings.required_labels),
    }
    if settings.mirror is not None:  # only where set: the pack configuration of other stacks is unchanged
        shared["mirror"] = settings.mirror
    return {rule.id: {"enforcementLevel": settings.levels.get(rule.id, rule.default_level), **shared} for rule in RULES}
