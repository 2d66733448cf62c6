"""Training operators: JobSet, Kubeflow Trainer v2, and the ClusterTrainingRuntime our jobs use.

JobSet is its own release (the Trainer chart's bundled copy is off, so one controller owns the
webhook); its chart defaults to a moving ``main`` image from a staging registry, so the image is
pinned to the release. The runtime ``torch-distributed-infratech`` runs torchrun in our training
image with ``/dev/shm`` as a memory volume (NCCL needs more than the container default) and NCCL
settings that surface failures instead of hanging.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from ...mirror.refs import mirror_ref
from ...config import StackConfig
from .base import Namespace, child_opts, meta
from .charts import PINS, release

RUNTIME = "torch-distributed-infratech"
SHM_LIMIT = "64Gi"

# the workload images' numeric user: non-root, 10000 or more (as the charts' runAsUser)
RUN_AS_USER = 10001
NCCL_ENV = [
    # fail a collective that hangs instead of blocking the job forever; torchrun restarts it
    {"name": "TORCH_NCCL_ASYNC_ERROR_HANDLING", "value": "1"},
    {"name": "TORCH_NCCL_BLOCKING_WAIT", "value": "0"},
    {"name": "NCCL_DEBUG", "value": "WARN"},
    # pods have one interface; never let NCCL pick the loopback
    {"name": "NCCL_SOCKET_IFNAME", "value": "^lo,docker"},
    {"name": "OMP_NUM_THREADS", "value": "8"},
]


def jobset_values() -> dict[str, Any]:
    version = PINS["jobset"].version
    return {"image": {"repository": "registry.k8s.io/jobset/jobset", "tag": f"v{version}", "pullPolicy": "IfNotPresent"}}


def trainer_values() -> dict[str, Any]:
    return {"jobset": {"install": False}, "runtimes": {"defaultEnabled": False}}


def runtime_spec(cfg: StackConfig) -> dict[str, Any]:
    """A torch distributed runtime: one replicated job ``node`` whose container ``node`` runs our
    image; Trainer sets the ``PET_*`` variables torchrun reads, the TrainJob gives the command."""
    container = {
        "name": "node",
        "image": mirror_ref(cfg.platform.training_image, cfg.mirror.registry, cfg.mirror.prefix) if cfg.mirror
        else cfg.platform.training_image,
        "env": NCCL_ENV,
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    pod = {
        "serviceAccountName": "jobs",
        "containers": [container],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_LIMIT}}],
    }
    return {
        "mlPolicy": {"numNodes": 1, "torch": {}},  # processes per node come from the TrainJob (resourcesPerNode)
        "template": {
            "spec": {
                "replicatedJobs": [
                    {
                        "name": "node",
                        "template": {
                            "metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}},
                            "spec": {"template": {"spec": pod}},
                        },
                    }
                ]
            }
        },
    }


class Training(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, provider, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:platform:Training", name, None, opts)
        jobset_pin, trainer_pin = PINS["jobset"], PINS["kubeflow-trainer"]
        jobset_ns = Namespace(jobset_pin.namespace, provider, self, labels={"infratech.io/component": "training"})
        jobset = release(jobset_pin, jobset_values(), child_opts(self, provider, depends_on=[jobset_ns.resource]), mirror=cfg.mirror)
        trainer_ns = Namespace(trainer_pin.namespace, provider, self, labels={"infratech.io/component": "training"})
        trainer = release(trainer_pin, trainer_values(), child_opts(self, provider, depends_on=[trainer_ns.resource, jobset]), mirror=cfg.mirror)
        k8s.apiextensions.CustomResource(
            "runtime-torch",
            api_version="trainer.kubeflow.org/v1alpha1",
            kind="ClusterTrainingRuntime",
            metadata=meta(RUNTIME, labels={"trainer.kubeflow.org/framework": "torch"}),
            spec=runtime_spec(cfg),
            opts=child_opts(self, provider, depends_on=[trainer]),
        )
        self.register_outputs({"runtime": RUNTIME})
