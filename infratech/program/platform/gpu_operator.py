"""The NVIDIA GPU stack: the GPU operator with values chosen for where the cluster comes from.

- OVHcloud MKS nodes have no driver: the operator installs the pinned driver and the toolkit.
- Nodes made ready by the node roles (or any image with the driver) keep theirs:
  ``driver.enabled=false``, and ``toolkit.enabled=false`` when containerd is configured too.
- Scaleway Kapsule runs its own operator on GPU pools: none is installed here (a second operator
  would fight the first over the same nodes).
- RKE2 and k3s keep containerd's config and socket in their own places: the toolkit is told.
- Node Feature Discovery comes with the operator, once; the DCGM exporter is on, with its
  ServiceMonitor when monitoring is on; MIG and time-slicing only for pools that ask (inference).
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi
import yaml

from ...config import GPU_TAINT_KEY, StackConfig
from ..handle import ClusterHandle
from ..providers.common import SLURM_TAINT, time_slicing_config_name
from .base import Namespace, child_opts
from .charts import PINS, release

DEVICE_PLUGIN_CONFIG = "infratech-device-plugin"
EXCLUSIVE = "exclusive"  # the device plugin's default configuration: one pod per GPU

# where RKE2 and k3s keep containerd's config template and socket
CONTAINERD_PATHS = {
    "rke2": ("/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl", "/run/k3s/containerd/containerd.sock"),
    "k3s": ("/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl", "/run/k3s/containerd/containerd.sock"),
}


def operator_needed(cfg: StackConfig, cluster: ClusterHandle) -> bool:
    has_gpus = any(p.gpus_per_node for p in cluster.pools)
    return cfg.platform.gpu_operator and has_gpus and not cluster.gpu_operator_preinstalled


def _device_plugin_config(cfg: StackConfig) -> Optional[dict[str, Any]]:
    shared = [p for p in cfg.pools if p.gpu_sharing == "time-slicing"]
    if not shared:
        return None
    data = {EXCLUSIVE: yaml.safe_dump({"version": "v1", "flags": {"migStrategy": "none"}}, sort_keys=False)}
    for pool in shared:
        data[time_slicing_config_name(pool)] = yaml.safe_dump(
            {
                "version": "v1",
                "flags": {"migStrategy": "none"},
                "sharing": {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": pool.time_slicing_replicas}]}},
            },
            sort_keys=False,
        )
    return {"create": True, "name": DEVICE_PLUGIN_CONFIG, "default": EXCLUSIVE, "data": data}


def operator_values(cfg: StackConfig, cluster: ClusterHandle) -> dict[str, Any]:
    """The GPU operator's values for this stack: a pure function, tested per provider."""
    driver_on = not cluster.driver_preinstalled
    toolkit_on = not cluster.toolkit_preinstalled
    values: dict[str, Any] = {
        "nfd": {"enabled": True},  # the cluster's one Node Feature Discovery
        "driver": {"enabled": driver_on},
        "toolkit": {"enabled": toolkit_on},
        "daemonsets": {
            # the pools' GPU taint is nvidia.com/gpu=present:NoSchedule
            "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        },
        "dcgmExporter": {
            "enabled": True,
            "serviceMonitor": {"enabled": cfg.platform.monitoring, "interval": "15s"},
        },
        "migManager": {"enabled": any(p.gpu_sharing == "mig" for p in cfg.pools)},
        "mig": {"strategy": "single"},
    }
    if any(SLURM_TAINT in p.taints for p in cluster.pools):
        # Slurm's GPU nodes need the driver, toolkit and device plugin as much as Kueue's
        values["daemonsets"]["tolerations"].append({"key": SLURM_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"})
    if driver_on:
        values["driver"].update({"version": cfg.platform.gpu_driver_version, "kernelModuleType": "auto"})
    if toolkit_on and cluster.distribution in CONTAINERD_PATHS:
        config, socket = CONTAINERD_PATHS[cluster.distribution]
        values["toolkit"]["env"] = [
            {"name": "CONTAINERD_CONFIG", "value": config},
            {"name": "CONTAINERD_SOCKET", "value": socket},
            {"name": "CONTAINERD_RUNTIME_CLASS", "value": "nvidia"},
        ]
    plugin = _device_plugin_config(cfg)
    if plugin is not None:
        values["devicePlugin"] = {"config": plugin}
    return values


class GpuStack(pulumi.ComponentResource):
    """The GPU operator in its own namespace, the only one allowed privileged pods."""

    def __init__(
        self, name: str, cfg: StackConfig, cluster: ClusterHandle, provider, after=(), opts: Optional[pulumi.ResourceOptions] = None
    ):
        super().__init__("infratech:platform:GpuStack", name, None, opts)
        pin = PINS["gpu-operator"]
        ns = Namespace(pin.namespace, provider, self, pod_security="privileged", labels={"infratech.io/component": "gpu"})
        self.release = release(pin, operator_values(cfg, cluster), child_opts(self, provider, depends_on=[ns.resource, *after]),
                               mirror=cfg.mirror)
        self.register_outputs({"chart": pin.version})
