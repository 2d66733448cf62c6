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

# where RKE2 and k3s keep containerd's config templates and socket
CONTAINERD_DIRS = {
    "rke2": ("/var/lib/rancher/rke2/agent/etc/containerd", "/run/k3s/containerd/containerd.sock"),
    "k3s": ("/var/lib/rancher/k3s/agent/etc/containerd", "/run/k3s/containerd/containerd.sock"),
}
# RKE2 and k3s ship containerd 2 from v1.31.6 and v1.32.2 (and every 1.33+) on (rancher/rke2 Dockerfile:
# hardened-containerd v2.0.x from v1.31.6+rke2r1, v1.32.2+rke2r1; k3s the same releases), and then read
# config-v3.toml.tmpl first; config.toml.tmpl is rendered with the version 2 base and migrated (k3s
# pkg/agent/containerd/config.go templateGenerations). The toolkit writes its runtimes into the file
# CONTAINERD_CONFIG names (nvidia-ctk-installer: CONTAINERD_CONFIG is the runtime config it edits):
# it must be the template this release reads, or RKE2 never sees them.
CONTAINERD_2_FROM = {31: 6, 32: 2, 33: 0}


def containerd_template(kube_version: Optional[str]) -> str:
    """config-v3.toml.tmpl for an RKE2/k3s release with containerd 2, else config.toml.tmpl.

    ``kube_version``: "1.N" (its current patch release) or "1.N.P"; None: a current release.
    """
    if kube_version is None:
        return "config-v3.toml.tmpl"
    parts = [int(x) for x in kube_version.split(".")]
    minor, patch = parts[1], (parts[2] if len(parts) > 2 else None)
    if minor > max(CONTAINERD_2_FROM):
        return "config-v3.toml.tmpl"
    first = CONTAINERD_2_FROM.get(minor)
    if first is None:
        return "config.toml.tmpl"
    return "config-v3.toml.tmpl" if patch is None or patch >= first else "config.toml.tmpl"


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
    if toolkit_on and cluster.distribution in CONTAINERD_DIRS:
        directory, socket = CONTAINERD_DIRS[cluster.distribution]
        values["toolkit"]["env"] = [
            {"name": "CONTAINERD_CONFIG", "value": f"{directory}/{containerd_template(cluster.kube_version)}"},
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
