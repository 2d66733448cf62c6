"""The GPU platform on Kubernetes, declared on top of any provider's :class:`ClusterHandle`.

One ComponentResource per concern, each switched by ``platform.<name>`` in the stack config:
``GpuStack`` (gpu_operator), ``Tenancy`` (tenancy; team namespaces always), ``Queues`` (kueue),
``Training`` (trainer), ``Storage`` (storage), ``Monitoring`` (monitoring), ``Serving``
(serving), ``Slurm`` (slurm, off unless the stack sets it). All of them talk to the cluster
through one Kubernetes provider built from the handle's kubeconfig. docs/platform.md says what each is for and how to switch it off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from ...config import StackConfig
from ..handle import ClusterHandle
from .admission import Admission
from .charts import PINS
from .gpu_operator import GpuStack, operator_needed
from .kueue import Queues
from .monitoring import Monitoring
from .serving import NAMESPACE as SERVING_NAMESPACE, Serving
from .slurm import Slurm
from .storage import Storage
from .team_description import TeamDescriptions, describe
from .tenancy import Tenancy
from .trainer import RUNTIME, Training


@dataclass(frozen=True)
class PlatformHandle:
    """What researchers' tools need from the platform: queues per team, storage classes, versions."""

    queues: dict[str, dict[str, str]] = field(default_factory=dict)
    storage_classes: tuple[str, ...] = ()
    serving_namespace: Optional[str] = None
    training_runtime: Optional[str] = None
    priority_classes: tuple[str, ...] = ()  # Kueue WorkloadPriorityClasses jobs may name
    charts: dict[str, str] = field(default_factory=dict)  # chart -> pinned version installed
    # team -> what its jobs need, as published in its namespace (team_description.py)
    team_descriptions: dict[str, dict] = field(default_factory=dict)


class Platform(pulumi.ComponentResource):
    handle: PlatformHandle

    def __init__(self, name: str, cfg: StackConfig, cluster: ClusterHandle, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:platform:Platform", name, None, opts)

        provider = k8s.Provider(
            f"{name}-cluster",
            kubeconfig=cluster.kubeconfig,
            context=cluster.kube_context,
            enable_server_side_apply=True,
            # nothing is applied before the system pool is ready: a release's 15-minute wait would
            # otherwise race the creation of the first nodes
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(cluster.ready)),
        )
        child = pulumi.ResourceOptions(parent=self)
        p = cfg.platform
        charts: dict[str, str] = {}

        def installed(*keys: str) -> None:
            charts.update({k: PINS[k].version for k in keys})

        # charts that bring ServiceMonitors install after the chart that brings their CRD
        monitors: list[pulumi.Resource] = []
        if p.monitoring:
            monitors.append(Monitoring("monitoring", cfg, cluster, provider, child).release)
            installed("kube-prometheus-stack")
        if operator_needed(cfg, cluster):
            GpuStack("gpu", cfg, cluster, provider, monitors, child)
            installed("gpu-operator")
        tenancy = Tenancy("tenancy", cfg, cluster, provider, child)
        if p.tenancy:
            Admission("admission", cfg, provider, child)
        queues, priority_classes = {}, ()
        if p.kueue:
            queuing = Queues("queues", cfg, cluster, provider, tenancy.namespaces, monitors, child)
            queues, priority_classes = queuing.queues, queuing.priority_classes
            installed("kueue")
        if p.trainer:
            Training("training", cfg, provider, child)
            installed("jobset", "kubeflow-trainer")
        classes: list[str] = []
        if p.storage:
            storage = Storage("storage", cfg, cluster, provider, child, team_namespaces=tenancy.namespaces)
            classes = storage.classes
            if cluster.object_store is not None:
                installed("csi-s3")
        serving = None
        if p.serving:
            serving = Serving("serving", cfg, cluster, provider, monitors, child)
            installed("keda", "cert-manager")
        if p.slurm is not None:
            Slurm("slurm", cfg, cluster, provider, serving.cert_manager if serving else None, child)
            installed("cert-manager", "slurm-operator-crds", "slurm-operator", "slurm")

        runtime = RUNTIME if p.trainer else None
        serving_namespace = SERVING_NAMESPACE if p.serving else None
        descriptions = {
            t.name: describe(cfg, cluster, t, queues=queues, priority_classes=priority_classes,
                             training_runtime=runtime, serving_namespace=serving_namespace)
            for t in cfg.teams
        }
        TeamDescriptions("team-descriptions", descriptions, cfg, provider, tenancy.namespaces, child)
        self.handle = PlatformHandle(
            queues=queues,
            storage_classes=tuple(classes),
            serving_namespace=serving_namespace,
            training_runtime=runtime,
            priority_classes=priority_classes,
            charts=dict(sorted(charts.items())),
            team_descriptions=descriptions,
        )
        self.register_outputs({"charts": self.handle.charts})


def install(cfg: StackConfig, cluster: ClusterHandle) -> Optional[PlatformHandle]:
    """The platform on ``cluster``; None while a self-built cluster has no kubeconfig yet (its
    bootstrap phase writes it into the stack's config, see providers/selfbuilt.py)."""
    if cluster.kubeconfig is None:
        return None
    return Platform(f"{cfg.name}-platform", cfg, cluster).handle
