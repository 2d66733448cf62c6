"""Reading the running stack's ``infratech:`` keys from Pulumi and validating them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Optional

import pulumi
from pulumi.runtime import config as _pulumi_config
from pydantic import SecretStr, ValidationError

from .. import catalog as _catalog
from .errors import StackConfigError, stack_problems
from .common import CATALOG_PROVIDERS, NAMESPACE
from .slurm import SLURM_ROLE
from .stack import StackConfig

def _slurm(pool: Any) -> bool:
    return isinstance(pool, dict) and pool.get("role") == SLURM_ROLE


def _context(raw: dict, secret_keys: Optional[set[str]] = None) -> dict:
    """What field validators need to know of the rest of the stack, read leniently from raw data."""
    def text(value: Any) -> Optional[str]:
        return value.strip() if isinstance(value, str) else None  # as the models see it

    provider, region = text(raw.get("provider")), text(raw.get("region"))
    cat = _catalog.load()
    pools = raw.get("pools") if isinstance(raw.get("pools"), list) else None
    models: Optional[set[str]] = None
    if provider in ("existing", "baremetal") and pools is not None:
        models = {text(p.get("gpu_model")) for p in pools if isinstance(p, dict) and text(p.get("gpu_model")) and not _slurm(p)}
    elif provider in CATALOG_PROVIDERS and pools is not None:
        models = set()
        for pool in pools:
            flavor = text(pool.get("flavor")) if isinstance(pool, dict) else None
            if provider == "outscale":  # the flavour is a VM type; GPUs are flexible GPUs
                flavor = text(pool.get("gpu_model")) if isinstance(pool, dict) else None
                if flavor is None:
                    continue
            offer = cat.offer(provider, flavor) if flavor else None
            if offer is None:
                models = None  # a bad flavour is reported on its own; do not guess the models
                break
            if offer.is_gpu and not _slurm(pool):  # Slurm's GPUs are not Kueue's to hand out
                models.add(offer.gpu_model_id)
    zone = None
    facts = cat.region(provider, region) if provider == "scaleway" and region else None
    if facts is not None:
        settings = raw.get("scaleway") if isinstance(raw.get("scaleway"), dict) else {}
        wanted = text(settings.get("zone")) if "zone" in settings else facts.zones[0]
        zone = wanted if wanted in facts.zones else None  # a bad zone is reported on its own
    existing = raw.get("existing") if isinstance(raw.get("existing"), dict) else {}
    operator_elsewhere = provider == "scaleway" or (provider == "existing" and existing.get("gpu_operator_preinstalled") is True)
    return {
        "provider": provider,
        "region": region,
        "zone": zone,
        "pool_gpu_models": models,
        "secret_keys": secret_keys,
        "gpu_operator_elsewhere": operator_elsewhere,
    }


def parse(raw: dict, stack: str, secret_keys: Optional[Iterable[str]] = None) -> StackConfig:
    """Validate a stack's ``infratech:`` settings (keys without the namespace).

    ``secret_keys``: the keys that came as Pulumi secrets; credentials given in plain text are
    refused. ``None`` skips that check (tests of other rules).
    """
    secrets = None if secret_keys is None else set(secret_keys)
    try:
        cfg = StackConfig.model_validate(raw, context=_context(raw, secrets))
    except ValidationError as exc:
        raise StackConfigError(stack, stack_problems(exc)) from None
    return cfg


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
    text_types = (str, Optional[str], SecretStr, Optional[SecretStr])
    string_keys = {k for k, f in StackConfig.model_fields.items() if f.annotation in text_types}
    raw = {}
    for key in sorted(config):
        if key.startswith(prefix):
            short, value = key[len(prefix):], config[key]
            raw[short] = value if short in string_keys or value is None else _decode(value)
    return raw


def _running_keys() -> set[str]:
    # The language host sets config in-process; older hosts and tests pass it in PULUMI_CONFIG.
    return {*pulumi.runtime.get_config_env(), *_pulumi_config.CONFIG.get()}


def raw_from_pulumi() -> dict:
    """Every ``infratech:*`` key of the running stack."""
    return raw_from_config({key: pulumi.runtime.get_config(key) for key in _running_keys()})


def secret_keys_from_pulumi() -> set[str]:
    """The ``infratech:*`` keys of the running stack that are Pulumi secrets, namespace removed."""
    prefix = NAMESPACE + ":"
    return {k[len(prefix):] for k in _running_keys() if k.startswith(prefix) and pulumi.runtime.is_config_secret(k)}


def load() -> StackConfig:
    """Read and validate the running stack's configuration (the Pulumi program's entry point)."""
    return parse(raw_from_pulumi(), pulumi.get_stack(), secret_keys_from_pulumi())
