"""Slurm on the cluster: SchedMD's Slinky (slurm-operator 1.2.1, Slurm 26.05), on nodes of its own.

Three charts, in order: the CRDs (``slinky.slurm.net/v1beta1``), the operator (after cert-manager,
which signs its webhook's certificate), then the ``slurm`` chart that declares the Controller
(slurmctld), the REST API, one NodeSet (slurmd) per pool with role ``slurm``, the partitions, the
login node (LoginSet) and, optionally, accounting (slurmdbd). Each slurmd pod holds all the GPUs of
its node (``nvidia.com/gpu`` limit = GPUs per node, ``Gres=gpu:<type>:<n>``); Kueue's flavours do
not select those nodes (kueue.kueue_pools). docs/slurm.md is the user's side of it.

Facts of the pinned charts this relies on (../shared/reference/upstream/slurm-operator-v1.2.1/):
- charts/slurm/templates/nodeset/nodeset-cr.yaml: each ``nodesets.<key>`` is merged over
  ``nodesetDefaults`` and becomes NodeSet ``<release>-worker-<key>``; ``extraConfMap`` becomes
  slurmd's ``--conf`` (node line), ``podSpec`` the pod template.
- charts/slurm/templates/controller/_helpers.tpl (slurm.controller.extraConf): each enabled
  ``partitions.<name>`` becomes ``PartitionName=<name> Nodes=<nodesets> <configMap as Key=Value>``.
- charts/slurm/templates/loginset/loginset-cr.yaml: ``loginsets.<key>`` merged over
  ``loginsetDefaults``; ``rootSshAuthorizedKeys`` and ``service`` are copied into the LoginSet.
- charts/slurm/values.yaml: ``configFiles`` are mounted in /etc/slurm (gres.conf there), the
  logfile and initconf sidecars default to ``docker.io/library/alpine:latest`` (pinned here).
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi

from ...config import StackConfig
from ...config.slurm import SLURM_ROLE
from ..handle import ClusterHandle, PoolHandle
from ..providers.common import LABEL_POOL
from . import cert_manager
from .base import Namespace, child_opts
from .charts import PINS, release
from .tenancy import OBJECT_STORE_SECRET, object_store_secret

GPU = "nvidia.com/gpu"
# the chart's logfile and initconf sidecars default to alpine:latest (charts/slurm/values.yaml);
# a release of Alpine's 3.22 branch instead
ALPINE = {"repository": "docker.io/library/alpine", "tag": "3.22.2"}
LOGIN_SET = "login"
# where a Slurm job finds the object store's keys, endpoint and bucket names (examples/slurm/)
OBJECT_STORE_DIR = "/etc/infratech/object-store"
SSH_PORT = 22  # the LoginSet's Service port (loginsetDefaults.service comment: port 22)


def slurm_pools(cluster: ClusterHandle) -> list[PoolHandle]:
    return [p for p in cluster.pools if p.role == SLURM_ROLE]


def gres_type(gpu_model: str) -> str:
    """The GRES type of a GPU model id: its first word (``h100-80gb`` -> ``h100``). A configured
    Type matches an autodetected GPU when it equals, or is a substring of, the name slurmd detects,
    spaces replaced with underscores (slurm.schedmd.com/gres.conf.html, Type), e.g.
    ``nvidia_h100_80gb_hbm3``; the Slinky docs at v1.2.1 use ``AutoDetect=nvidia`` with
    ``Gres=gpu:<TYPE>:N`` (SOURCE.txt notes, docs/installation.md)."""
    return gpu_model.split("-", 1)[0]


def slurm_time(hours: int) -> str:
    """Hours in Slurm's ``days-hours:minutes:seconds`` (slurm.conf DefaultTime, MaxTime)."""
    return f"{hours // 24}-{hours % 24:02d}:00:00"


def tolerations(pool: PoolHandle) -> list[dict[str, str]]:
    """Exactly the pool's taints, tolerated: slurmd goes where nothing else may."""
    return [{"key": t["key"], "operator": "Equal", "value": t.get("value", ""), "effect": t["effect"]} for t in pool.taints]


def nodeset(pool: PoolHandle, object_store: bool) -> dict[str, Any]:
    """One NodeSet per Slurm pool: one slurmd per node of the pool (scalingMode DaemonSet, CRD
    nodesets ``spec.scalingMode``), holding all the node's GPUs. With an object store, the
    Secret jobs use on Kubernetes is mounted at :data:`OBJECT_STORE_DIR`, one file per variable."""
    values: dict[str, Any] = {
        "scalingMode": "DaemonSet",
        "logfile": {"image": dict(ALPINE)},
        "podSpec": {"nodeSelector": {LABEL_POOL: pool.name}, "tolerations": tolerations(pool)},
    }
    if object_store:
        values["podSpec"]["volumes"] = [{"name": "object-store", "secret": {"secretName": OBJECT_STORE_SECRET}}]
        values["slurmd"] = {"volumeMounts": [{"name": "object-store", "mountPath": OBJECT_STORE_DIR, "readOnly": True}]}
    if pool.gpus_per_node and pool.gpu_model:
        values.setdefault("slurmd", {})["resources"] = {"limits": {GPU: pool.gpus_per_node}}
        values["extraConfMap"] = {"Gres": [f"gpu:{gres_type(pool.gpu_model)}:{pool.gpus_per_node}"]}
    return values


def slurm_values(cfg: StackConfig, cluster: ClusterHandle) -> dict[str, Any]:
    """The ``slurm`` chart's values for this stack: a pure function, rendered by the tests."""
    s = cfg.platform.slurm
    assert s is not None, "only called with platform.slurm set"
    pools = slurm_pools(cluster)
    has_gpus = any(p.gpus_per_node for p in pools)
    controller: dict[str, Any] = {"logfile": {"image": dict(ALPINE)}}
    conf: dict[str, Any] = {}
    values: dict[str, Any] = {
        "clusterName": cfg.name,
        "controller": controller,
        "nodesetDefaults": {"logfile": {"image": dict(ALPINE)}},
        "nodesets": {p.name: nodeset(p, cluster.object_store is not None) for p in pools},
        "loginsetDefaults": {"initconf": {"image": dict(ALPINE)}},
        "partitions": {
            part.name: {
                "enabled": True,
                "nodesets": list(part.pools),
                "configMap": {
                    "Default": "YES" if part.name == s.default_partition else "NO",
                    "DefaultTime": slurm_time(part.default_time_hours),
                    "MaxTime": slurm_time(part.max_time_hours),
                    "State": "UP",
                },
            }
            for part in s.partitions
        },
    }
    if has_gpus:
        values["configFiles"] = {"gres.conf": "AutoDetect=nvidia\n"}
        conf["GresTypes"] = ["gpu"]
    if s.login is not None:
        allow = list((cluster.api_access or {}).get("allowed_cidrs") or [])
        values["loginsets"] = {
            LOGIN_SET: {
                "replicas": s.login.replicas,
                "rootSshAuthorizedKeys": "\n".join(s.login.ssh_public_keys) + "\n",
                "service": {"spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": allow}},
            }
        }
    if s.accounting is not None:
        a = s.accounting
        values["accounting"] = {
            "enabled": True,
            "storageConfig": {
                "host": a.host, "port": a.port, "database": a.database, "username": a.username,
                "passwordKeyRef": {"name": a.password_secret, "key": "password"},
            },
        }
        if has_gpus:
            conf["AccountingStorageTRES"] = ["gres/gpu"]
    if conf:
        controller["extraConfMap"] = conf
    return values


# The namespace ``slinky`` enforces Pod Security ``restricted``; the chart's operator and webhook
# contexts default to {} with these values in comments (charts/slurm-operator/values.yaml
# operator.podSecurityContext, operator.securityContext, and the same under webhook).
_POD_CONTEXT = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
_CONTAINER_CONTEXT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def operator_values(cfg: StackConfig) -> dict[str, Any]:
    restricted = {"podSecurityContext": dict(_POD_CONTEXT), "securityContext": dict(_CONTAINER_CONTEXT)}
    return {
        # the CRDs come from their own release, installed first (crds.enabled is the chart's switch)
        "crds": {"enabled": False},
        "certManager": {"enabled": True},
        "operator": dict(restricted),
        "webhook": dict(restricted),
    }


class Slurm(pulumi.ComponentResource):
    """Slinky's three releases, in order. ``cert_manager``: the release Serving installed, or None
    to install it here."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        cluster: ClusterHandle,
        provider,
        cert_manager_release: Optional[pulumi.Resource] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("infratech:platform:Slurm", name, None, opts)
        if cert_manager_release is None:
            cert_manager_release = cert_manager.install(cfg, provider, self, "slurm")
        crds_pin, operator_pin, slurm_pin = PINS["slurm-operator-crds"], PINS["slurm-operator"], PINS["slurm"]
        slinky = Namespace(operator_pin.namespace, provider, self, labels={"infratech.io/component": "slurm"})
        # slurmd runs the jobs' processes and their cgroups, with the node's devices: privileged
        ns = Namespace(slurm_pin.namespace, provider, self, pod_security="privileged", labels={"infratech.io/component": "slurm"})
        # the same Secret as in the team namespaces: jobs read and write the same buckets
        object_store_secret("slurm-object-store", cluster, ns.name, child_opts(self, provider, depends_on=[ns.resource]))
        self.crds = release(crds_pin, {}, child_opts(self, provider, depends_on=[slinky.resource]), mirror=cfg.mirror)
        self.operator = release(
            operator_pin, operator_values(cfg), child_opts(self, provider, depends_on=[slinky.resource, self.crds, cert_manager_release]),
            mirror=cfg.mirror,
        )
        self.slurm = release(slurm_pin, slurm_values(cfg, cluster), child_opts(self, provider, depends_on=[ns.resource, self.operator]),
                             mirror=cfg.mirror)
        self.register_outputs({"charts": {p.key: p.version for p in (crds_pin, operator_pin, slurm_pin)}})
