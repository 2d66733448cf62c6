"""Typed stack configuration: the one place that reads ``pulumi.Config``.

One module per section of the stack file: ``pools``, ``providers`` (ovh, scaleway, existing),
``storage`` (network, object_storage), ``platform`` (with ``slurm``, its Slurm settings),
``teams``, ``policy``, and ``stack`` for the whole; ``common`` holds what they share, ``load``
reads Pulumi's config, ``errors`` words problems.

Everything else receives a validated, frozen :class:`StackConfig`. Problems in a stack file are
reported all at once, each with its key path (``pools[1].flavor``), the value given and what is
allowed; :class:`StackConfigError` carries them.
"""

from .errors import Problem, StackConfigError
from .load import load, parse, raw_from_config, raw_from_pulumi
from .common import (
    CATALOG_PROVIDERS,
    GPU_TAINT_KEY,
    NAMESPACE,
    PROVIDER_TITLES,
    PROVIDERS,
    RESERVED_LABEL_PREFIX,
    SECRET_KEYS,
    SLURM_TAINT_KEY,
)
from .platform import Platform
from .pools import Pool, Taint
from .providers import ExistingSettings, OvhSettings, ScalewaySettings
from .stack import StackConfig
from .storage import Bucket, Network, ObjectStorage
from .teams import Team

__all__ = [
    "CATALOG_PROVIDERS", "SECRET_KEYS", "ExistingSettings", "ScalewaySettings",
    "GPU_TAINT_KEY", "NAMESPACE", "PROVIDER_TITLES", "PROVIDERS", "RESERVED_LABEL_PREFIX", "SLURM_TAINT_KEY",
    "Bucket", "Network", "ObjectStorage", "OvhSettings", "Platform", "Pool", "Problem",
    "StackConfig", "StackConfigError", "Taint", "Team",
    "load", "parse", "raw_from_config", "raw_from_pulumi",
]
