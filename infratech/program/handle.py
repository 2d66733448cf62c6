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
    # scoped identities (providers/s3_scopes.py) where the provider can make them (OVHcloud,
    # Scaleway); elsewhere empty/None and the stack's one key above is used, as documented
    teams: dict[str, "S3Key"] = field(default_factory=dict)  # team name -> its own key
    readonly: Optional["S3Key"] = None  # serving and csi-s3's mounts
    promoter: Optional["S3Key"] = None  # the evaluation gate: the only writer of promotions

    def team_key(self, team: str) -> "S3Key":
        own = self.teams.get(team)
        return own if own is not None else S3Key(self.access_key_id, self.secret_access_key)

    def read_key(self) -> "S3Key":
        return self.readonly if self.readonly is not None else S3Key(self.access_key_id, self.secret_access_key)


@dataclass(frozen=True)
class S3Key:
    access_key_id: pulumi.Output[str]  # secret
    secret_access_key: pulumi.Output[str]  # secret


@dataclass(frozen=True)
class ClusterHandle:
    """The contract between ``providers`` and ``platform``.

    ``kubeconfig``: the kubeconfig's content, or for an existing cluster possibly its path (the
    Kubernetes provider takes either); ``kube_context`` picks a context in it.
    ``driver_preinstalled``: the NVIDIA driver is on the nodes already (node image or Ansible), so
    the GPU operator must not install it. ``toolkit_preinstalled``: the NVIDIA container toolkit
    and containerd's nvidia runtime are configured already (Ansible role). ``gpu_operator_preinstalled``:
    something else runs the GPU operator (Scaleway Kapsule does on GPU pools), so the platform must
    not install a second one. ``distribution``: rke2 and k3s keep containerd's config and socket
    elsewhere, which the GPU operator must be told.
    """

    provider: str
    region: str
    # secret; None for a self-built cluster before its bootstrap phase (no platform is declared then)
    kubeconfig: Optional[pulumi.Output[str]]
    pools: tuple[PoolHandle, ...]
    object_store: Optional[ObjectStoreHandle]
    driver_preinstalled: bool
    gpu_operator_preinstalled: bool
    toolkit_preinstalled: bool = False
    kube_context: Optional[str] = None
    distribution: str = "managed"  # managed | generic | rke2 | k3s
    kube_version: Optional[str] = None  # "1.N" or "1.N.P" where the stack knows it (existing clusters)
    country: Optional[str] = None  # ISO 3166 code of where the nodes run
    # self-built clusters: what the node roles need, e.g. {"server_url": ..., "api_endpoint": ...,
    # "hosts": [{"name", "address", "pool", "rke2_role": server|agent, "user", "jump_host"}]}: planned
    # names offline, real addresses after `up`. Managed and existing clusters: empty.
    inventory: dict = field(default_factory=dict)
    # what must exist before the platform's objects can be applied: the system pools (a cluster's
    # API may answer before any node runs, or not at all until a pool exists, as on Kapsule)
    ready: tuple[pulumi.Resource, ...] = ()
    # the API allow-list the provider applies: {"allowed_cidrs": [...], "deployer_cidrs": [...]};
    # None where the stack does not manage one (an existing cluster)
    api_access: Optional[dict] = None
    # self-built clusters: the RKE2 join token, generated once, a secret output
    join_token: Optional[pulumi.Output[str]] = None
