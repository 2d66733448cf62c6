"""Providers: one ComponentResource per way of getting a Kubernetes cluster with GPU pools."""

from __future__ import annotations

from ...config import StackConfig
from ..handle import ClusterHandle


def create_cluster(cfg: StackConfig) -> ClusterHandle:
    """Declare the provider's cluster component for ``cfg`` and return its handle."""
    if cfg.provider == "ovh":
        from .ovh import OvhCluster

        return OvhCluster(cfg.name, cfg).handle
    if cfg.provider == "scaleway":
        from .scaleway import ScalewayCluster

        return ScalewayCluster(cfg.name, cfg).handle
    if cfg.provider == "outscale":
        from .outscale import OutscaleCluster

        return OutscaleCluster(cfg.name, cfg).handle
    if cfg.provider == "baremetal":
        from .baremetal import BaremetalCluster

        return BaremetalCluster(cfg.name, cfg).handle
    if cfg.provider == "existing":
        from ...offline import is_offline
        from .existing import ExistingCluster

        return ExistingCluster(cfg.name, cfg, offline=is_offline()).handle
    raise AssertionError(f"provider {cfg.provider!r} passed validation but has no component")
