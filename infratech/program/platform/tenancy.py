"""Teams: a namespace each, with guardrails.

Per team: a namespace enforcing Pod Security ``restricted``; a ResourceQuota (GPUs no more than the
team can ever be admitted, no LoadBalancer or NodePort services: nothing opens an endpoint from a
team namespace); a LimitRange giving containers defaults; RBAC letting the team's groups run jobs
and read logs there and nowhere else; NetworkPolicies that deny everything but DNS, the object
store, traffic inside the namespace (rendezvous and NCCL between a job's pods) and Prometheus
scraping; the object-store credentials as a Secret jobs mount; a service account for jobs.
"""

from __future__ import annotations

import ipaddress
from typing import Optional
from urllib.parse import urlparse

import pulumi
import pulumi_kubernetes as k8s

from ...config import StackConfig, Team
from ...config.storage import NEVER_REACHABLE
from ..handle import ClusterHandle, S3Key
from ...policy.admission import TEAM_LABEL, WORKLOADS_LABEL
from .base import Namespace, child_opts, meta
from .quotas import quota_hard

MONITORING_NAMESPACE = "monitoring"
JOB_SERVICE_ACCOUNT = "jobs"
OBJECT_STORE_SECRET = "object-store"
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]

# what a team member may do in the team's namespace
MEMBER_RULES = [
    (["batch"], ["jobs"], ["get", "list", "watch", "create", "update", "patch", "delete"]),
    (["jobset.x-k8s.io"], ["jobsets"], ["get", "list", "watch", "create", "update", "patch", "delete"]),
    (["trainer.kubeflow.org"], ["trainjobs"], ["get", "list", "watch", "create", "update", "patch", "delete"]),
    (["kueue.x-k8s.io"], ["workloads", "localqueues"], ["get", "list", "watch"]),
    ([""], ["pods"], ["get", "list", "watch", "delete"]),
    ([""], ["pods/log"], ["get"]),
    ([""], ["events", "services"], ["get", "list", "watch"]),
    ([""], ["configmaps", "persistentvolumeclaims"], ["get", "list", "watch", "create", "update", "patch", "delete"]),
]
# cluster-wide objects researchers read: the runtimes they pick and the queues they wait in
READER_RULES = [
    (["trainer.kubeflow.org"], ["clustertrainingruntimes"], ["get", "list", "watch"]),
    (["kueue.x-k8s.io"], ["clusterqueues", "resourceflavors", "cohorts"], ["get", "list", "watch"]),
]


def team_groups(team: Team) -> list[str]:
    """The identity-provider groups bound to a team; by default ``infratech:<team>``."""
    return list(team.groups) or [f"infratech:{team.name}"]


def object_store_secret(
    resource_name: str, cluster: ClusterHandle, namespace: str, opts: pulumi.ResourceOptions, key: Optional[S3Key] = None
) -> None:
    """The Secret ``object-store`` that jobs and the serving init step load with ``envFrom``:
    keys, endpoint, region and one ``S3_BUCKET_<PURPOSE>`` per bucket. Nothing without a store.
    ``key``: whose key (a team's, the read-only one); by default the platform's."""
    store = cluster.object_store
    if store is None:
        return
    key = key if key is not None else S3Key(store.access_key_id, store.secret_access_key)
    data = {
        "AWS_ACCESS_KEY_ID": key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": key.secret_access_key,
        "AWS_ENDPOINT_URL": pulumi.Output.from_input(store.endpoint),
        "AWS_REGION": pulumi.Output.from_input(store.region),
    }
    for purpose, bucket in sorted(store.buckets.items()):
        data[f"S3_BUCKET_{purpose.upper().replace('-', '_')}"] = pulumi.Output.from_input(bucket)
    k8s.core.v1.Secret(resource_name, metadata=meta(OBJECT_STORE_SECRET, namespace), type="Opaque", string_data=data, opts=opts)


def policy_rules(spec) -> list[k8s.rbac.v1.PolicyRuleArgs]:
    return [k8s.rbac.v1.PolicyRuleArgs(api_groups=g, resources=r, verbs=v) for g, r, v in spec]


def store_port(endpoint: str) -> int:
    return urlparse(endpoint).port or 443


def store_egress_blocks(cfg: StackConfig, cluster: ClusterHandle) -> list[dict]:
    """Where team pods may open HTTPS connections: the object store, as precisely as the stack
    knows it. ``object_storage.egress_cidrs`` (the store's addresses) first; else the endpoint's
    own address when it is an IP literal; else, without an address to name, any public address
    (``0.0.0.0/0`` minus private ranges on managed providers) — the stack should then declare
    ``egress_cidrs``. Link-local and carrier-grade NAT ranges are never reachable."""
    store = cluster.object_store
    declared = list(cfg.object_storage.egress_cidrs)
    if not declared:
        try:
            declared = [f"{ipaddress.ip_address(urlparse(store.endpoint).hostname)}/32"]
        except ValueError:
            pass
    if declared:
        return [{"cidr": c} for c in declared]
    # an existing cluster's store may sit on a private address
    excepted = [*([] if cluster.provider == "existing" else PRIVATE_RANGES), *NEVER_REACHABLE]
    return [{"cidr": "0.0.0.0/0", "except": excepted}]


class Tenancy(pulumi.ComponentResource):
    """Team namespaces; with ``platform.tenancy`` their quotas, RBAC and network policies."""

    namespaces: dict[str, Namespace]

    def __init__(self, name: str, cfg: StackConfig, cluster: ClusterHandle, provider, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:platform:Tenancy", name, None, opts)
        self._cfg, self._cluster, self._provider = cfg, cluster, provider
        guard = cfg.platform.tenancy
        self.namespaces = {}
        for team in cfg.teams:
            ns = Namespace(
                team.namespace,
                provider,
                self,
                pod_security="restricted" if guard else "baseline",
                labels={TEAM_LABEL: team.name, WORKLOADS_LABEL: "true"},
            )
            self.namespaces[team.name] = ns
            self._service_account(team, ns)
            self._object_store_secret(team, ns)
            if guard:
                self._quota(team, ns)
                self._rbac(team, ns)
                self._network_policies(team, ns)
        if guard and cfg.teams:
            subjects = [k8s.rbac.v1.SubjectArgs(kind="Group", name=g, api_group="rbac.authorization.k8s.io") for t in cfg.teams for g in team_groups(t)]
            role = k8s.rbac.v1.ClusterRole(
                "researchers-read", metadata=meta("infratech-researchers"), rules=policy_rules(READER_RULES), opts=child_opts(self, provider)
            )
            k8s.rbac.v1.ClusterRoleBinding(
                "researchers-read",
                metadata=meta("infratech-researchers"),
                role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="infratech-researchers"),
                subjects=subjects,
                opts=child_opts(self, provider, depends_on=[role]),
            )
        self.register_outputs({"namespaces": list(self.namespaces)})

    def _opts(self, ns: Namespace) -> pulumi.ResourceOptions:
        return child_opts(self, self._provider, depends_on=[ns.resource])

    def _service_account(self, team: Team, ns: Namespace) -> None:
        k8s.core.v1.ServiceAccount(
            f"{team.name}-jobs",
            metadata=meta(JOB_SERVICE_ACCOUNT, ns.name),
            automount_service_account_token=False,  # jobs do not talk to the Kubernetes API
            opts=self._opts(ns),
        )

    def _object_store_secret(self, team: Team, ns: Namespace) -> None:
        # the team's own key, scoped to its prefix (providers/s3_scopes.py); never another team's
        store = self._cluster.object_store
        key = store.team_key(team.name) if store is not None else None
        object_store_secret(f"{team.name}-object-store", self._cluster, ns.name, self._opts(ns), key)

    def _quota(self, team: Team, ns: Namespace) -> None:
        hard = quota_hard(self._cfg, self._cluster, team)
        k8s.core.v1.ResourceQuota(
            f"{team.name}-quota", metadata=meta("team", ns.name), spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=hard), opts=self._opts(ns)
        )
        k8s.core.v1.LimitRange(
            f"{team.name}-limits",
            metadata=meta("defaults", ns.name),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default_request={"cpu": "500m", "memory": "1Gi"},
                        default={"memory": "4Gi"},
                    )
                ]
            ),
            opts=self._opts(ns),
        )

    def _rbac(self, team: Team, ns: Namespace) -> None:
        role = k8s.rbac.v1.Role(f"{team.name}-member", metadata=meta("team-member", ns.name), rules=policy_rules(MEMBER_RULES), opts=self._opts(ns))
        k8s.rbac.v1.RoleBinding(
            f"{team.name}-member",
            metadata=meta("team-member", ns.name),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name="team-member"),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="Group", name=g, api_group="rbac.authorization.k8s.io") for g in team_groups(team)],
            opts=child_opts(self, self._provider, depends_on=[ns.resource, role]),
        )

    def _network_policies(self, team: Team, ns: Namespace) -> None:
        def policy(suffix: str, spec: k8s.networking.v1.NetworkPolicySpecArgs) -> None:
            k8s.networking.v1.NetworkPolicy(f"{team.name}-{suffix}", metadata=meta(suffix, ns.name), spec=spec, opts=self._opts(ns))

        everything = k8s.meta.v1.LabelSelectorArgs()
        by_name = lambda name: k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": name})  # noqa: E731
        policy("default-deny", k8s.networking.v1.NetworkPolicySpecArgs(pod_selector=everything, policy_types=["Ingress", "Egress"]))
        policy(
            "allow-dns",
            k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=everything,
                policy_types=["Egress"],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=by_name("kube-system"))],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol=p, port=53) for p in ("UDP", "TCP")],
                    )
                ],
            ),
        )
        same_namespace = [k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=everything)]
        policy(
            "allow-within-namespace",  # a job's pods: rendezvous, NCCL, evaluation against a local server
            k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=everything,
                policy_types=["Ingress", "Egress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=same_namespace)],
                egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=same_namespace)],
            ),
        )
        store = self._cluster.object_store
        if store is not None:
            peers = [
                k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=b["cidr"], except_=b.get("except")))
                for b in store_egress_blocks(self._cfg, self._cluster)
            ]
            policy(
                "allow-object-store",
                k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=everything,
                    policy_types=["Egress"],
                    egress=[
                        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                            to=peers,
                            ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=store_port(store.endpoint))],
                        )
                    ],
                ),
            )
        if self._cfg.platform.monitoring:
            policy(
                "allow-prometheus",
                k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=everything,
                    policy_types=["Ingress"],
                    ingress=[
                        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                            from_=[k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=by_name(MONITORING_NAMESPACE))]
                        )
                    ],
                ),
            )
