"""Storage: Retain storage classes on the provider's block CSI, and an S3 CSI for datasets.

Provider block classes delete the volume with its claim; checkpoints and model caches must
outlive a deleted claim, so ours keep them (``Retain``), bind where the pod lands (volumes are
zonal) and can grow. Datasets are read-mostly and live in object storage: csi-s3 (GeeseFS) mounts
the stack's datasets bucket, with the endpoint and keys of the provider's object store. Its chart
defaults to a foreign endpoint, so the endpoint is always set here. Checkpoints are never written
through FUSE (partial writes and renames are unsafe there): the trainer uploads them itself.

Two ways to the bucket, because csi-s3 gives every dynamically provisioned volume its own
``<volume id>/`` prefix in the class's bucket (csi-s3 v0.43.7 README, "Bucket"): a claim of the
class ``infratech-datasets-s3`` is an empty scratch area, never the datasets already there. Those
are reached through a static, read-only PersistentVolume per team whose ``volumeHandle`` is the
bucket itself (README "Static Provisioning"; pkg/driver/nodeserver.go volumeIDToBucketPrefix
splits ``bucket[/prefix]``), pre-bound to the claim ``datasets`` in the team's namespace.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from ...config import GPU_TAINT_KEY, StackConfig
from ..handle import ClusterHandle
from .base import Namespace, child_opts, meta
from .charts import PINS, release
from ...policy.admission import TEAM_LABEL

CHECKPOINTS_CLASS = "infratech-checkpoints"
MODELS_CLASS = "infratech-models"
DATASETS_CLASS = "infratech-datasets-s3"
DATASETS_BUCKET = "datasets"
DATASETS_CLAIM = "datasets"  # in every team namespace: the bucket's existing content, read-only
CSI_S3_DRIVER = "ru.yandex.s3.csi"  # csi-s3 v0.43.7 deploy/helm/csi-s3/templates/csi-s3.yaml (CSIDriver)
CSI_S3_SECRET = "csi-s3-secret"  # the chart's secret.name, written in the release's namespace
# the static datasets volumes mount with a read-only key of their own (providers/s3_scopes.py):
# GeeseFS's `-o ro` is a mount option, not an access control; the chart's secret keeps the
# platform's key for the scratch class, whose prefixes the controller creates
CSI_S3_READONLY_SECRET = "csi-s3-datasets-readonly"
MOUNT_OPTIONS = "--memory-limit 1000 --dir-mode 0777 --file-mode 0666"  # the chart's default, for scratch
# csi-s3 v0.43.7 ignores the volume's readOnly flag (nodeserver.go NodePublishVolume: "TODO:
# Implement readOnly"), so GeeseFS itself mounts read-only (-o ro, a FUSE option it passes on) and
# shows nothing as writable; pods should mount the claim readOnly too (the runtime enforces that).
READ_ONLY_MOUNT_OPTIONS = "--memory-limit 1000 --dir-mode 0555 --file-mode 0444 -o ro"
# Object storage has no size; Kubernetes needs one on a volume and a claim (the claim's must not
# exceed the volume's) and csi-s3 ignores it.
DATASETS_CAPACITY = "1Ti"


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
            "mountOptions": MOUNT_OPTIONS,
            "reclaimPolicy": "Retain",
        },
        "secret": {
            "create": True,
            "name": CSI_S3_SECRET,
            "accessKey": store.access_key_id,
            "secretKey": store.secret_access_key,
            "endpoint": store.endpoint,
            "region": store.region,
        },
        # the node plugin must run where training pods mount datasets: on the GPU nodes too
        "tolerations": {"node": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]},
    }


def datasets_volume_spec(team: str, namespace: str, bucket) -> dict[str, Any]:
    """The static, read-only PersistentVolume of a team's ``datasets`` claim: the whole datasets
    bucket, never deleted with the claim, bound to that claim only (``claimRef``)."""
    secret_ref = {"name": CSI_S3_READONLY_SECRET, "namespace": PINS["csi-s3"].namespace}
    return {
        "capacity": {"storage": DATASETS_CAPACITY},
        "accessModes": ["ReadOnlyMany"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "",  # out of the dynamic class: csi-s3 would otherwise own its prefix
        "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": namespace, "name": DATASETS_CLAIM},
        "csi": {
            "driver": CSI_S3_DRIVER,
            "volumeHandle": bucket,  # <bucket>[/<prefix>]: the bucket's root, where workloads.data writes
            "readOnly": True,
            # the driver reads the keys at NodeStageVolume (attachRequired: false: no controller publish)
            "nodeStageSecretRef": secret_ref,
            "nodePublishSecretRef": secret_ref,
            "volumeAttributes": {"mounter": "geesefs", "options": READ_ONLY_MOUNT_OPTIONS},
        },
    }


def volume_secret_data(key, endpoint, region) -> dict[str, Any]:
    """What csi-s3 reads from a volume's secret (k8s-csi-s3 v0.43.7 pkg/s3/client.go
    NewClientFromSecret: accessKeyID, secretAccessKey, region, endpoint)."""
    return {"accessKeyID": key.access_key_id, "secretAccessKey": key.secret_access_key, "endpoint": endpoint, "region": region}


def datasets_claim_spec(team: str) -> dict[str, Any]:
    return {
        "accessModes": ["ReadOnlyMany"],
        "storageClassName": "",  # no dynamic provisioning: bind the static volume named here
        "volumeName": datasets_volume_name(team),
        "resources": {"requests": {"storage": DATASETS_CAPACITY}},
    }


def datasets_volume_name(team: str) -> str:
    return f"infratech-datasets-{team}"


class Storage(pulumi.ComponentResource):
    classes: list[str]

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        cluster: ClusterHandle,
        provider,
        opts: Optional[pulumi.ResourceOptions] = None,
        team_namespaces: Optional[dict[str, Namespace]] = None,
    ):
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
        self.datasets_claims: dict[str, str] = {}
        if values is not None:
            csi_s3 = release(PINS["csi-s3"], values, child_opts(self, provider), mirror=cfg.mirror)
            self.classes.append(DATASETS_CLASS)
            bucket = values["storageClass"]["singleBucket"]
            readonly = self._readonly_secret(cluster, values["secret"], provider, csi_s3)
            for team, ns in sorted((team_namespaces or {}).items()):
                pv = k8s.core.v1.PersistentVolume(
                    f"datasets-{team}",
                    metadata=meta(datasets_volume_name(team), labels={TEAM_LABEL: team}),
                    spec=datasets_volume_spec(team, ns.name, bucket),
                    opts=child_opts(self, provider, depends_on=[csi_s3, readonly]),
                )
                k8s.core.v1.PersistentVolumeClaim(
                    f"datasets-claim-{team}",
                    metadata=meta(DATASETS_CLAIM, ns.name, labels={TEAM_LABEL: team}),
                    spec=datasets_claim_spec(team),
                    opts=child_opts(self, provider, depends_on=[pv, ns.resource]),
                )
                self.datasets_claims[team] = DATASETS_CLAIM
        self.register_outputs({"classes": self.classes, "datasets_claims": self.datasets_claims})

    def _readonly_secret(self, cluster: ClusterHandle, chart_secret: dict, provider, csi_s3) -> k8s.core.v1.Secret:
        """The Secret the static datasets volumes name: the read-only key."""
        key = cluster.object_store.read_key()
        return k8s.core.v1.Secret(
            "csi-s3-datasets-readonly",
            metadata=meta(CSI_S3_READONLY_SECRET, PINS["csi-s3"].namespace),
            type="Opaque",
            string_data=volume_secret_data(key, chart_secret["endpoint"], chart_secret["region"]),
            opts=child_opts(self, provider, depends_on=[csi_s3]),
        )
