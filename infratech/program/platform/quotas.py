"""A team namespace's ResourceQuota: what its pods may request at once.

Kueue counts GPUs only (it is told to ignore CPU and memory, kueue.py), so the namespace quota is
what bounds CPU, memory and volumes, and it caps GPUs at what Kueue could ever admit for the team.

- GPUs: per model, the team's quota plus what it may borrow (its borrowing limit, or, unset, what
  the rest of the cohort holds: Kueue lends a ClusterQueue's unused nominal quota to the cohort
  when it sets no lendingLimit), never more than the pools of that model have at max nodes.
- CPU and memory: ``cpu_quota`` / ``memory_quota_gib``, or by default what the team's GPU ceiling
  occupies on the GPU nodes (whole nodes of each model's pool) plus an allowance for CPU work, never
  more than the cluster at max nodes. Where a flavour's size is not in the catalog, no default.
- Volumes: ``storage_quota_gib``, plus the nominal size of the team's datasets claim (csi-s3
  ignores it, Kubernetes counts it).
"""

from __future__ import annotations

import math
from typing import Optional

from ... import catalog
from ...config import StackConfig, Team
from ..handle import ClusterHandle, PoolHandle
from .storage import DATASETS_CAPACITY, csi_s3_values

GPU = "nvidia.com/gpu"
# requests of CPU-only pods beside the GPU jobs: data preparation, small evaluations, notebooks
CPU_ALLOWANCE, MEMORY_ALLOWANCE_GIB = 16, 64


def _gib(quantity: str) -> int:
    units = {"Gi": 1, "Ti": 1024}
    return int(quantity[:-2]) * units[quantity[-2:]]


def gpu_ceiling_by_model(cfg: StackConfig, cluster: ClusterHandle, team: Team) -> dict[str, int]:
    capacity: dict[str, int] = {}
    for p in cluster.pools:
        if p.gpu_model:
            capacity[p.gpu_model] = capacity.get(p.gpu_model, 0) + p.max_nodes * p.gpus_per_node
    out = {}
    for model, cap in sorted(capacity.items()):
        own = team.gpu_quota.get(model, 0)
        lendable = sum(t.gpu_quota.get(model, 0) for t in cfg.teams if t.name != team.name)
        borrow = min(team.gpu_borrowing_limit.get(model, lendable), lendable)
        out[model] = min(cap, own + borrow)
    return out


def gpu_ceiling(cfg: StackConfig, cluster: ClusterHandle, team: Team) -> int:
    """The most GPUs a team's pods may request at once: its quota plus what it may borrow."""
    return sum(gpu_ceiling_by_model(cfg, cluster, team).values())


def _size(cluster: ClusterHandle, pool: PoolHandle) -> Optional[tuple[int, float]]:
    offer = catalog.load().offer(cluster.provider, pool.flavor)
    if offer is None or offer.vcpus is None or offer.ram_gib is None:
        return None
    return offer.vcpus, offer.ram_gib


def default_cpu_memory(cfg: StackConfig, cluster: ClusterHandle, team: Team) -> Optional[tuple[int, int]]:
    """(cores, GiB) by default, or None where a pool's flavour size is not known."""
    sizes = {p.name: _size(cluster, p) for p in cluster.pools}
    if not cluster.pools or any(s is None for s in sizes.values()):
        return None
    total_cpu = sum(p.max_nodes * sizes[p.name][0] for p in cluster.pools)
    total_mem = sum(p.max_nodes * sizes[p.name][1] for p in cluster.pools)
    cpu, mem = float(CPU_ALLOWANCE), float(MEMORY_ALLOWANCE_GIB)
    for model, gpus in gpu_ceiling_by_model(cfg, cluster, team).items():
        left = gpus
        for p in (p for p in cluster.pools if p.gpu_model == model and p.gpus_per_node):
            nodes = min(p.max_nodes, math.ceil(left / p.gpus_per_node))
            cpu, mem = cpu + nodes * sizes[p.name][0], mem + nodes * sizes[p.name][1]
            left -= nodes * p.gpus_per_node
            if left <= 0:
                break
    return min(total_cpu, math.ceil(cpu)), min(math.ceil(total_mem), math.ceil(mem))


def quota_hard(cfg: StackConfig, cluster: ClusterHandle, team: Team) -> dict[str, str]:
    hard = {
        f"requests.{GPU}": str(gpu_ceiling(cfg, cluster, team)),
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
    default = default_cpu_memory(cfg, cluster, team)
    cpu = team.cpu_quota if team.cpu_quota is not None else (default[0] if default else None)
    mem = team.memory_quota_gib if team.memory_quota_gib is not None else (default[1] if default else None)
    if cpu is not None:
        hard["requests.cpu"] = str(cpu)
    if mem is not None:
        hard["requests.memory"] = f"{mem}Gi"
    datasets = _gib(DATASETS_CAPACITY) if cfg.platform.storage and csi_s3_values(cluster) is not None else 0
    hard["requests.storage"] = f"{team.storage_quota_gib + datasets}Gi"
    return hard
