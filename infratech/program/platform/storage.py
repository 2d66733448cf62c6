"""Storage: Retain storage classes on the provider's block CSI, and an S3 CSI for datasets.

Provider block classes delete the volume with its claim; checkpoints and model caches must
outlive a deleted claim, so ours keep them (``Retain``), bind where the pod lands (volumes are
zonal) and can grow. Datasets are read-mostly and live in object storage: csi-s3 (GeeseFS) mounts
the stack's datasets bucket, with the endpoint and keys of the provider's object store. Its chart
defaults to a foreign endpoint, so the endpoint is always set here. Checkpoints are never written
through FUSE (partial writes and renames are unsafe there): the trainer uploads them itself.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from ...config import GPU_TAINT_KEY, StackConfig
from ..handle import ClusterHandle
from .base import child_opts, meta
from .charts import PINS, release

CHECKPOINTS_CLASS = "infratech-checkpoints"
MODELS_CLASS = "infratech-models"
DATASETS_CLASS = "infratech-datasets-s3"
DATASETS_BUCKET = "datasets"


def block_storage(cfg: StackConfig, cluster: ClusterHandle) -> Optional[tuple[str, dict[str, str]]]:
    """(provisioner, parameters) of the cluster's block CSI, or None when unknown."""
    if cluster.provider == "ovh":
        return "cinder.csi.openstack.org", {"type": "high-speed-gen2", "availability": "nova", "fsType": "ext4"}
    if cluster.provider == "scaleway":
        return "csi.scaleway.com", {"iops": "15000"}
    existing = cfg.existing
    if existing is not None and existing.block_storage_provisioner:
        return existing.block_storage_provisioner, dict(existing.block_storage_parameters)
    return None


def csi_s3_values(cluster: ClusterHandle) -> Optional[dict[str, Any]]:
    store = cluster.object_store
    if store is None or DATASETS_BUCKET not in store.buckets:
        return None
    return {
        "storageClass": {
            "create": True,
            "name": DATASETS_CLASS,
            "singleBucket": store.buckets[DATASETS_BUCKET],
            "mounter": "geesefs",
            "mountOptions": "--memory-limit 1000 --dir-mode 0777 --file-mode 0666",
            "reclaimPolicy": "Retain",
        },
        "secret": {
            "create": True,
            "accessKey": store.access_key_id,
            "secretKey": store.secret_access_key,
            "endpoint": store.endpoint,
            "region": store.region,
        },
        # the node plugin must run where training pods mount datasets: on the GPU nodes too
        "tolerations": {"node": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]},
    }


class Storage(pulumi.ComponentResource):
    classes: list[str]

    def __init__(self, name: str, cfg: StackConfig, cluster: ClusterHandle, provider, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:platform:Storage", name, None, opts)
        self.classes = []
        block = block_storage(cfg, cluster)
        if block is not None:
            provisioner, parameters = block
            for class_name in (CHECKPOINTS_CLASS, MODELS_CLASS):
                k8s.storage.v1.StorageClass(
                    class_name,
                    metadata=meta(class_name),
                    provisioner=provisioner,
                    parameters=parameters,
                    reclaim_policy="Retain",
                    volume_binding_mode="WaitForFirstConsumer",
                    allow_volume_expansion=True,
                    opts=child_opts(self, provider),
                )
                self.classes.append(class_name)
        values = csi_s3_values(cluster)
        if values is not None:
            release(PINS["csi-s3"], values, child_opts(self, provider))
            self.classes.append(DATASETS_CLASS)
        self.register_outputs({"classes": self.classes})
