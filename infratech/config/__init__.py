"""Typed stack configuration: the one place that reads ``pulumi.Config``.

Everything else receives a validated, frozen :class:`StackConfig`. Problems in a stack file are
reported all at once, each with its key path (``pools[1].flavor``), the value given and what is
allowed; :class:`StackConfigError` carries them.
"""

from .errors import Problem, StackConfigError
from .load import load, parse, raw_from_config, raw_from_pulumi
from .models import (
    CATALOG_PROVIDERS,
    GPU_TAINT_KEY,
    SECRET_KEYS,
    ExistingSettings,
    ScalewaySettings,
    NAMESPACE,
    PROVIDER_TITLES,
    PROVIDERS,
    RESERVED_LABEL_PREFIX,
    Bucket,
    Network,
    ObjectStorage,
    OvhSettings,
    Platform,
    Pool,
    StackConfig,
    Taint,
    Team,
)

__all__ = [
    "CATALOG_PROVIDERS", "SECRET_KEYS", "ExistingSettings", "ScalewaySettings",
    "GPU_TAINT_KEY", "NAMESPACE", "PROVIDER_TITLES", "PROVIDERS", "RESERVED_LABEL_PREFIX",
    "Bucket", "Network", "ObjectStorage", "OvhSettings", "Platform", "Pool", "Problem",
    "StackConfig", "StackConfigError", "Taint", "Team",
    "load", "parse", "raw_from_config", "raw_from_pulumi",
]
