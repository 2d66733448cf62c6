"""Queues: Kueue with one ResourceFlavor per GPU model, one ClusterQueue per team in a shared
cohort, and a LocalQueue in each team namespace.

Quotas are GPU quotas, as the stack states them; CPU and memory are left to the namespaces'
ResourceQuota and LimitRange (Kueue is told to ignore them), so a job is admitted when its GPUs
fit. Teams lend unused quota to the cohort and borrow within their limits; fair sharing decides
who gives back first. ``waitForPodsReady`` admits a multi-node job all at once or not at all;
where a GPU pool can grow, its timeout leaves time for the provider's node start (catalog
``provisioning``), so a job is not evicted while the nodes it asked for are still booting.
Jobs in team namespaces are managed by Kueue even without a queue label.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s
import yaml

from ... import catalog
from ...config import GPU_TAINT_KEY, StackConfig, Team
from ...config.slurm import SLURM_ROLE
from ..handle import ClusterHandle
from ..providers.common import LABEL_GPU_MODEL
from .base import Namespace, child_opts, meta
from .charts import PINS, release
from ...policy.admission import TEAM_LABEL

API = "kueue.x-k8s.io/v1beta2"
COHORT = "infratech"
GPU = "nvidia.com/gpu"
FRAMEWORKS = ("batch/job", "jobset.x-k8s.io/jobset", "trainer.kubeflow.org/trainjob")
# Kueue WorkloadPriorityClasses (label kueue.x-k8s.io/priority-class on a job): a higher value may
# preempt a lower one within the team's ClusterQueue (preemption.withinClusterQueue: LowerPriority).
# A job without a class gets 0, as preemptible.
PRIORITY_CLASSES = (
    ("production", 1000, "Runs that serve a release or a deadline; preempts research and preemptible jobs"),
    ("research", 100, "Experiments; preempts preemptible jobs, yields to production"),
    ("preemptible", 0, "Whatever is left: first to be preempted"),
)


class WorkloadPriorityClass(pulumi.CustomResource):
    """Kueue's WorkloadPriorityClass, whose ``value`` and ``description`` sit at the top level of
    the object, where pulumi_kubernetes' Python ``CustomResource`` only sends ``spec``. The
    provider applies any ``kubernetes:<apiVersion>:<Kind>`` resource's inputs as the object."""

    def __init__(self, name: str, value: int, description: str, opts: pulumi.ResourceOptions):
        props = {"apiVersion": API, "kind": "WorkloadPriorityClass", "metadata": meta(name), "value": value, "description": description}
        super().__init__(f"kubernetes:{API}:WorkloadPriorityClass", f"priority-{name}", props,
                         pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(version=metadata.version("pulumi_kubernetes"))))


# Pulling and starting the training image on a node that is up: the whole timeout where no GPU pool
# grows, on top of the node start where one does.
POD_START_MINUTES = 10
# A running job whose pods stop being ready (a pod failed, JobSet recreates its Jobs) holds every
# admission while it recovers: Kueue v0.19.2 blocks admission while any admitted workload lacks
# PodsReady (pkg/cache/scheduler/cache.go podsReadyForAllAdmittedWorkloads, clusterqueue.go
# WorkloadsNotReady). Enough for a restart on the job's nodes; a lost node means eviction and
# requeue, then the admission timeout covers the new node.
RECOVERY_TIMEOUT = "3m"
# Requeue back-off after a timeout: about base * 2^(n-1) seconds (Kueue v0.19.2
# apis/config/v1beta2 RequeuingStrategy): 60, 120, 240 s, each shorter than the cluster
# autoscaler's scale-down-unneeded time (10 minutes by default, and our Kapsule default), so the
# node an evicted job asked for is still there when it is admitted again. After the third requeue
# the Workload is deactivated (spec.active false) instead of blocking admissions in a loop.
REQUEUING = {"timestamp": "Eviction", "backoffBaseSeconds": 60, "backoffMaxSeconds": 600, "backoffLimitCount": 3}


def kueue_pools(cluster: ClusterHandle) -> list:
    """The pools whose GPUs Kueue hands out: all but Slurm's, whose GPUs slurmd holds (a flavour
    over them would book the same GPU twice)."""
    return [p for p in cluster.pools if p.role != SLURM_ROLE]


def growing_gpu_pools(cluster: ClusterHandle) -> list[str]:
    """GPU pools that can add nodes (autoscaled from zero or beyond their minimum)."""
    return [p.name for p in kueue_pools(cluster) if p.gpu_model and p.max_nodes > p.min_nodes]


def pods_ready_timeout_minutes(cluster: ClusterHandle) -> int:
    """Minutes an admitted job may take to have all its pods ready before Kueue evicts it: the pod
    start, plus the provider's GPU node start where a GPU pool can grow."""
    growing = growing_gpu_pools(cluster)
    if not growing:
        return POD_START_MINUTES
    start = catalog.load().node_start(cluster.provider)
    if start is None:
        known = ", ".join(catalog.load().node_start_providers())
        raise ValueError(
            f"GPU pool(s) {', '.join(growing)} can grow (min_nodes < max_nodes), but infratech/catalog.yaml has no "
            f"provisioning.gpu_node_start.{cluster.provider}: Kueue's waitForPodsReady timeout is sized from the "
            f"provider's GPU node start time (known for: {known}). Give those pools a fixed size "
            f"(min_nodes = max_nodes) or add the provider's figure with its source."
        )
    return start.minutes + POD_START_MINUTES


def manager_config(cfg: StackConfig, cluster: ClusterHandle) -> dict[str, Any]:
    """Kueue's Configuration (config.kueue.x-k8s.io/v1beta2): the chart's defaults, plus gang
    admission, fair sharing, the integrations we use and the namespaces Kueue manages."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "health": {"healthProbeBindAddress": ":8081"},
        # per-queue quota and usage metrics: the queue dashboard and the pending alert read them
        "metrics": {"bindAddress": ":8443", "enableClusterQueueResources": True},
        "webhook": {"port": 9443},
        "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
        "controller": {
            "groupKindConcurrency": {
                "Job.batch": 5,
                "Pod": 5,
                "Workload.kueue.x-k8s.io": 10,
                "LocalQueue.kueue.x-k8s.io": 5,
                "ClusterQueue.kueue.x-k8s.io": 5,
                "ResourceFlavor.kueue.x-k8s.io": 1,
            }
        },
        "clientConnection": {"qps": 300, "burst": 500},
        "waitForPodsReady": {
            "timeout": f"{pods_ready_timeout_minutes(cluster)}m",
            "recoveryTimeout": RECOVERY_TIMEOUT,
            "blockAdmission": True,
            "requeuingStrategy": dict(REQUEUING),
        },
        "manageJobsWithoutQueueName": True,
        "managedJobsNamespaceSelector": {"matchExpressions": [{"key": TEAM_LABEL, "operator": "Exists"}]},
        "integrations": {"frameworks": list(FRAMEWORKS)},
        "fairSharing": {"preemptionStrategies": ["LessThanOrEqualToFinalShare", "LessThanInitialShare"]},
        "resources": {"excludeResourcePrefixes": ["cpu", "memory", "ephemeral-storage", "hugepages-"]},
    }


def kueue_values(cfg: StackConfig, cluster: ClusterHandle) -> dict[str, Any]:
    return {
        "enablePrometheus": cfg.platform.monitoring,
        "managerConfig": {"controllerManagerConfigYaml": yaml.safe_dump(manager_config(cfg, cluster), sort_keys=False)},
    }


def flavor_spec(model: str) -> dict[str, Any]:
    return {
        "nodeLabels": {LABEL_GPU_MODEL: model},
        # injected into admitted pods, so they may land on the tainted GPU nodes of this flavour
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    }


def cluster_queue_spec(team: Team, models: list[str]) -> dict[str, Any]:
    flavors = []
    for model in models:
        quota: dict[str, Any] = {"name": GPU, "nominalQuota": team.gpu_quota.get(model, 0)}
        if model in team.gpu_borrowing_limit:
            quota["borrowingLimit"] = team.gpu_borrowing_limit[model]
        flavors.append({"name": model, "resources": [quota]})
    return {
        "cohortName": COHORT,
        "namespaceSelector": {"matchLabels": {TEAM_LABEL: team.name}},  # only the team's own LocalQueue
        "queueingStrategy": "BestEffortFIFO",
        "fairSharing": {"weight": team.fair_share_weight},
        "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"},
        "resourceGroups": [{"coveredResources": [GPU], "flavors": flavors}],
    }


class Queues(pulumi.ComponentResource):
    """Kueue and the teams' queues. ``queues``: team -> (namespace, LocalQueue, ClusterQueue)."""

    queues: dict[str, dict[str, str]]

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        cluster: ClusterHandle,
        provider,
        team_namespaces: dict[str, Namespace],
        after=(),
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("infratech:platform:Queues", name, None, opts)
        pin = PINS["kueue"]
        ns = Namespace(pin.namespace, provider, self, labels={"infratech.io/component": "queues"})
        kueue = release(pin, kueue_values(cfg, cluster), child_opts(self, provider, depends_on=[ns.resource, *after]), mirror=cfg.mirror)
        after = child_opts(self, provider, depends_on=[kueue])  # the CRDs come with the chart

        models = sorted({p.gpu_model for p in kueue_pools(cluster) if p.gpu_model})
        flavors = [
            k8s.apiextensions.CustomResource(
                f"flavor-{model}", api_version=API, kind="ResourceFlavor", metadata=meta(model), spec=flavor_spec(model), opts=after
            )
            for model in models
        ]
        cohort = k8s.apiextensions.CustomResource("cohort", api_version=API, kind="Cohort", metadata=meta(COHORT), spec={}, opts=after)
        for name, value, description in PRIORITY_CLASSES:
            WorkloadPriorityClass(name, value, description, after)
        self.priority_classes = tuple(name for name, _, _ in PRIORITY_CLASSES)
        self.queues = {}
        for team in cfg.teams:
            cq = k8s.apiextensions.CustomResource(
                f"cq-{team.name}",
                api_version=API,
                kind="ClusterQueue",
                metadata=meta(team.name),
                spec=cluster_queue_spec(team, models),
                opts=child_opts(self, provider, depends_on=[kueue, cohort, *flavors]),
            )
            team_ns = team_namespaces[team.name]
            k8s.apiextensions.CustomResource(
                f"lq-{team.name}",
                api_version=API,
                kind="LocalQueue",
                metadata=meta(team.name, team_ns.name),
                spec={"clusterQueue": team.name},
                opts=child_opts(self, provider, depends_on=[cq, team_ns.resource]),
            )
            self.queues[team.name] = {"namespace": team_ns.name, "local_queue": team.name, "cluster_queue": team.name}
        self.register_outputs({"queues": self.queues})
