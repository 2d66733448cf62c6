"""Node labels and taints every provider puts on its pools, so the platform can rely on them."""

from __future__ import annotations

from ...config import GPU_TAINT_KEY, SLURM_TAINT_KEY, Pool, StackConfig
from ...config.slurm import SLURM_ROLE
from ..handle import PoolHandle

LABEL_POOL = "infratech.io/pool"
LABEL_ROLE = "infratech.io/role"
LABEL_GPU_MODEL = "infratech.io/gpu-model"
LABEL_GPU_COUNT = "infratech.io/gpu-count"
# read by the GPU operator: which device-plugin configuration and which MIG layout a node gets
LABEL_DEVICE_PLUGIN_CONFIG = "nvidia.com/device-plugin.config"
LABEL_MIG_CONFIG = "nvidia.com/mig.config"
SLURM_TAINT = {"key": SLURM_TAINT_KEY, "value": "true", "effect": "NoSchedule"}


def time_slicing_config_name(pool: Pool) -> str:
    """The key of a pool's entry in the device plugin's ConfigMap."""
    return f"time-slicing-{pool.name}"


def pool_labels(cfg: StackConfig, pool: Pool) -> dict[str, str]:
    offer = cfg.offer(pool)
    labels = {**cfg.labels, **pool.labels, LABEL_POOL: pool.name, LABEL_ROLE: pool.role}
    if offer.is_gpu and pool.role != SLURM_ROLE:
        # what Kueue's ResourceFlavors select: never on Slurm's nodes, whose GPUs slurmd holds
        labels[LABEL_GPU_MODEL] = offer.gpu_model_id
    if offer.is_gpu:
        labels[LABEL_GPU_COUNT] = str(offer.gpu_count)
    if pool.gpu_sharing == "time-slicing":
        labels[LABEL_DEVICE_PLUGIN_CONFIG] = time_slicing_config_name(pool)
    elif pool.gpu_sharing == "mig":
        labels[LABEL_MIG_CONFIG] = pool.mig_profile
    return dict(sorted(labels.items()))


def pool_taints(cfg: StackConfig, pool: Pool) -> tuple[dict[str, str], ...]:
    taints = [t.model_dump() for t in pool.taints]
    if cfg.offer(pool).is_gpu and not any(t["key"] == GPU_TAINT_KEY for t in taints):
        taints.insert(0, {"key": GPU_TAINT_KEY, "value": "present", "effect": "NoSchedule"})
    if pool.role == SLURM_ROLE:
        taints.append(SLURM_TAINT)
    return tuple(taints)


def pool_handle(cfg: StackConfig, pool: Pool) -> PoolHandle:
    offer = cfg.offer(pool)
    return PoolHandle(
        name=pool.name,
        role=pool.role,
        flavor=pool.flavor,
        gpu_model=offer.gpu_model_id,
        gpus_per_node=offer.gpu_count,
        min_nodes=pool.min_nodes,
        desired_nodes=pool.desired_nodes,
        max_nodes=pool.max_nodes,
        labels=pool_labels(cfg, pool),
        taints=pool_taints(cfg, pool),
    )


def api_access(allowed: tuple[str, ...], deployer: tuple[str, ...]) -> dict[str, list[str]]:
    """What the API allow-list holds, for the stack output and the `deployer-reaches-api` rule:
    the stack's networks and where `pulumi up` runs from (the platform's releases need the API)."""
    return {"allowed_cidrs": list(allowed), "deployer_cidrs": list(deployer)}
