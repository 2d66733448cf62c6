"""Reading the running stack's ``infratech:`` keys from Pulumi and validating them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Optional

import pulumi
from pulumi.runtime import config as _pulumi_config
from pydantic import ValidationError

from .. import catalog as _catalog
from .errors import StackConfigError, _problems
from .models import NAMESPACE, PROVIDERS, StackConfig

def _context(raw: dict) -> dict:
    """What field validators need to know of the rest of the stack, read leniently from raw data."""
    def text(value: Any) -> Optional[str]:
        return value.strip() if isinstance(value, str) else None  # as the models see it

    provider, region = text(raw.get("provider")), text(raw.get("region"))
    models: Optional[set[str]] = None
    pools = raw.get("pools")
    if provider in PROVIDERS and isinstance(pools, list):
        cat = _catalog.load()
        models = set()
        for pool in pools:
            flavor = text(pool.get("flavor")) if isinstance(pool, dict) else None
            offer = cat.offer(provider, flavor) if flavor else None
            if offer is None:
                models = None  # a bad flavour is reported on its own; do not guess the models
                break
            if offer.is_gpu:
                models.add(offer.gpu_model_id)
    return {"provider": provider, "region": region, "pool_gpu_models": models}


def parse(raw: dict, stack: str) -> StackConfig:
    """Validate a stack's ``infratech:`` settings (keys without the namespace)."""
    try:
        return StackConfig.model_validate(raw, context=_context(raw))
    except ValidationError as exc:
        raise StackConfigError(stack, _problems(exc)) from None


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value  # a plain string


def raw_from_config(config: Mapping[str, Optional[str]]) -> dict:
    """The ``infratech:*`` keys of a Pulumi config map, namespace removed, decoded from Pulumi's
    string form: structured values arrive as JSON text, scalars as plain text. Keys whose field
    is a string stay text, so that ``name: "2026"`` remains a string."""
    prefix = NAMESPACE + ":"
    string_keys = {k for k, f in StackConfig.model_fields.items() if f.annotation is str}
    raw = {}
    for key in sorted(config):
        if key.startswith(prefix):
            short, value = key[len(prefix):], config[key]
            raw[short] = value if short in string_keys or value is None else _decode(value)
    return raw


def raw_from_pulumi() -> dict:
    """Every ``infratech:*`` key of the running stack."""
    # The language host sets config in-process; older hosts and tests pass it in PULUMI_CONFIG.
    keys = {*pulumi.runtime.get_config_env(), *_pulumi_config.CONFIG.get()}
    return raw_from_config({key: pulumi.runtime.get_config(key) for key in keys})


def load() -> StackConfig:
    """Read and validate the running stack's configuration (the Pulumi program's entry point)."""
    return parse(raw_from_pulumi(), pulumi.get_stack())
