"""What a provider hands to the platform layer: the cluster, its pools and its object store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi


@dataclass(frozen=True)
class PoolHandle:
    name: str
    role: str
    flavor: str
    gpu_model: Optional[str]  # catalog GPU model id (``h100-80gb``), None for CPU pools
    gpus_per_node: int
    min_nodes: int
    desired_nodes: int
    max_nodes: int
    labels: dict[str, str]
    taints: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class ObjectStoreHandle:
    endpoint: str
    region: str
    buckets: dict[str, pulumi.Output[str]]  # purpose ("checkpoints") -> bucket name
    access_key_id: pulumi.Output[str]  # secret
    secret_access_key: pulumi.Output[str]  # secret


@dataclass(frozen=True)
class ClusterHandle:
    """The contract between ``providers`` and ``platform``.

    ``driver_preinstalled``: the NVIDIA driver is on the nodes already (node image or Ansible), so
    the GPU operator must not install it. ``gpu_operator_preinstalled``: the provider runs the
    GPU operator itself (Scaleway Kapsule), so the platform must not install a second one.
    """

    provider: str
    region: str
    kubeconfig: pulumi.Output[str]  # secret
    pools: tuple[PoolHandle, ...]
    object_store: Optional[ObjectStoreHandle]
    driver_preinstalled: bool
    gpu_operator_preinstalled: bool
    inventory: dict = field(default_factory=dict)
