"""The serving base: the ``serving`` namespace, KEDA to scale vLLM on its queue length, and an
HTTPS entry point for the serving gateway with a certificate from cert-manager.

The certificate comes from an ACME CA when the stack names one, otherwise from the cluster's own
CA (a self-signed root kept in cert-manager's namespace): no certificate authority outside the
stack's control is involved unless asked for. The Ingress routes ``serving_host`` to the
gateway Service the llm-serve chart creates; with no ``serving_host`` nothing is exposed.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from ...config import StackConfig
from ...policy.admission import WORKLOADS_LABEL
from .base import Namespace, child_opts, meta
from ..handle import ClusterHandle
from .cert_manager import install as cert_manager_install
from .charts import PINS, release
from .tenancy import MONITORING_NAMESPACE, object_store_secret, policy_rules, store_egress_blocks, store_port, team_groups

NAMESPACE = "serving"
GATEWAY_SERVICE = "llm-gateway"
GATEWAY_PORT = 8000
CA_ISSUER = "infratech-ca"
ACME_ISSUER = "infratech-acme"
CERT_API = "cert-manager.io/v1"


def keda_values(cfg: StackConfig) -> dict[str, Any]:
    monitor = {"enabled": cfg.platform.monitoring}
    return {"prometheus": {"metricServer": {"enabled": cfg.platform.monitoring, "serviceMonitor": monitor}}}


# what charts/llm-serve renders (templates/*.yaml), which team members install and remove; no
# ConfigMaps (the chart renders none) and no NetworkPolicies: the namespace's are the platform's
# (policies are additive, so one a member could add would open what default-deny closes)
_ALL = ["get", "list", "watch", "create", "update", "patch", "delete"]
DEPLOYER_RULES = [
    (["apps"], ["deployments"], _ALL),
    ([""], ["services"], _ALL),
    (["policy"], ["poddisruptionbudgets"], _ALL),
    (["keda.sh"], ["scaledobjects"], _ALL),
    (["monitoring.coreos.com"], ["servicemonitors"], _ALL),
    ([""], ["pods", "pods/log", "events"], ["get", "list", "watch"]),
]


class Serving(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, cluster: ClusterHandle, provider, after=(), opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:platform:Serving", name, None, opts)
        ns = Namespace(NAMESPACE, provider, self, labels={"infratech.io/component": "serving", WORKLOADS_LABEL: "true"})
        # the serving init step reads the promoted checkpoint: with the read-only key, never a team's
        store = cluster.object_store
        object_store_secret(
            "serving-object-store", cluster, ns.name, child_opts(self, provider, depends_on=[ns.resource]), store.read_key() if store else None
        )
        self._deployers(cfg, provider, ns)
        if cfg.platform.tenancy:  # the guardrails switch, as in team namespaces
            self._network_policies(cfg, cluster, provider, ns)
        keda_pin = PINS["keda"]
        keda_ns = Namespace(keda_pin.namespace, provider, self, labels={"infratech.io/component": "serving"})
        release(keda_pin, keda_values(cfg), child_opts(self, provider, depends_on=[keda_ns.resource, *after]), mirror=cfg.mirror)
        cert_manager = self.cert_manager = cert_manager_install(cfg, provider, self, "serving")
        after = child_opts(self, provider, depends_on=[cert_manager])

        # the cluster's own CA: a self-signed root, and an issuer signing with it
        root = k8s.apiextensions.CustomResource(
            "selfsigned-root", api_version=CERT_API, kind="ClusterIssuer", metadata=meta("infratech-selfsigned"), spec={"selfSigned": {}}, opts=after
        )
        ca = k8s.apiextensions.CustomResource(
            "ca-certificate",
            api_version=CERT_API,
            kind="Certificate",
            metadata=meta("infratech-ca", PINS["cert-manager"].namespace),
            spec={
                "isCA": True,
                "commonName": f"{cfg.name} platform CA",
                "secretName": "infratech-ca",
                "duration": "87600h",
                "privateKey": {"algorithm": "ECDSA", "size": 256},
                "issuerRef": {"name": "infratech-selfsigned", "kind": "ClusterIssuer", "group": "cert-manager.io"},
            },
            opts=child_opts(self, provider, depends_on=[cert_manager, root]),
        )
        k8s.apiextensions.CustomResource(
            "ca-issuer",
            api_version=CERT_API,
            kind="ClusterIssuer",
            metadata=meta(CA_ISSUER),
            spec={"ca": {"secretName": "infratech-ca"}},
            opts=child_opts(self, provider, depends_on=[cert_manager, ca]),
        )
        issuer = CA_ISSUER
        if cfg.platform.acme is not None:
            solver: dict[str, Any] = {"http01": {"ingress": {}}}
            if cfg.platform.ingress_class:
                solver["http01"]["ingress"]["ingressClassName"] = cfg.platform.ingress_class
            k8s.apiextensions.CustomResource(
                "acme-issuer",
                api_version=CERT_API,
                kind="ClusterIssuer",
                metadata=meta(ACME_ISSUER),
                spec={
                    "acme": {
                        "email": cfg.platform.acme.email,
                        "server": cfg.platform.acme.server,
                        "privateKeySecretRef": {"name": "infratech-acme-account"},
                        "solvers": [solver],
                    }
                },
                opts=after,
            )
            issuer = ACME_ISSUER
        host = cfg.platform.serving_host
        if host is not None:
            k8s.apiextensions.CustomResource(
                "gateway-certificate",
                api_version=CERT_API,
                kind="Certificate",
                metadata=meta("llm-gateway-tls", ns.name),
                spec={
                    "secretName": "llm-gateway-tls",
                    "dnsNames": [host],
                    "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
                },
                opts=child_opts(self, provider, depends_on=[cert_manager, ns.resource]),
            )
            k8s.networking.v1.Ingress(
                "gateway",
                metadata=meta(GATEWAY_SERVICE, ns.name),
                spec=k8s.networking.v1.IngressSpecArgs(
                    ingress_class_name=cfg.platform.ingress_class,
                    tls=[k8s.networking.v1.IngressTLSArgs(hosts=[host], secret_name="llm-gateway-tls")],
                    rules=[
                        k8s.networking.v1.IngressRuleArgs(
                            host=host,
                            http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                                paths=[
                                    k8s.networking.v1.HTTPIngressPathArgs(
                                        path="/v1",
                                        path_type="Prefix",
                                        backend=k8s.networking.v1.IngressBackendArgs(
                                            service=k8s.networking.v1.IngressServiceBackendArgs(
                                                name=GATEWAY_SERVICE,
                                                port=k8s.networking.v1.ServiceBackendPortArgs(number=GATEWAY_PORT),
                                            )
                                        ),
                                    )
                                ]
                            ),
                        )
                    ],
                ),
                opts=child_opts(self, provider, depends_on=[ns.resource]),
            )
        self.register_outputs({"namespace": NAMESPACE, "issuer": issuer})

    def _deployers(self, cfg: StackConfig, provider, ns: Namespace) -> None:
        """Team members may deploy llm-serve releases here: the kinds the chart renders (with the
        tenancy guardrails, which give them their rights in their own namespaces too)."""
        groups = [g for team in cfg.teams for g in team_groups(team)]
        if not groups or not cfg.platform.tenancy:
            return
        role = k8s.rbac.v1.Role("serving-deployer", metadata=meta("serving-deployer", ns.name), rules=policy_rules(DEPLOYER_RULES),
                                opts=child_opts(self, provider, depends_on=[ns.resource]))
        k8s.rbac.v1.RoleBinding(
            "serving-deployer",
            metadata=meta("serving-deployer", ns.name),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name="serving-deployer"),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="Group", name=g, api_group="rbac.authorization.k8s.io") for g in groups],
            opts=child_opts(self, provider, depends_on=[ns.resource, role]),
        )

    def _network_policies(self, cfg: StackConfig, cluster: ClusterHandle, provider, ns: Namespace) -> None:
        """Default-deny in ``serving``; in: the ingress controller's namespace (and Prometheus's
        scrape), nothing else; out: DNS and the object store, as team namespaces."""
        np = k8s.networking.v1
        everything = k8s.meta.v1.LabelSelectorArgs()

        def from_namespace(name: str):
            return np.NetworkPolicyPeerArgs(namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": name}))

        def policy(name: str, **spec) -> None:
            np.NetworkPolicy(f"serving-{name}", metadata=meta(name, ns.name), spec=np.NetworkPolicySpecArgs(pod_selector=everything, **spec),
                             opts=child_opts(self, provider, depends_on=[ns.resource]))

        policy("default-deny", policy_types=["Ingress", "Egress"])
        policy("allow-ingress-controller", policy_types=["Ingress"], ingress=[np.NetworkPolicyIngressRuleArgs(from_=[from_namespace(cfg.platform.ingress_namespace)])])
        if cfg.platform.monitoring:
            policy("allow-prometheus", policy_types=["Ingress"], ingress=[np.NetworkPolicyIngressRuleArgs(from_=[from_namespace(MONITORING_NAMESPACE)])])
        dns = np.NetworkPolicyEgressRuleArgs(to=[from_namespace("kube-system")], ports=[np.NetworkPolicyPortArgs(protocol=p, port=53) for p in ("UDP", "TCP")])
        egress = [dns]
        if cluster.object_store is not None:
            blocks = [np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(cidr=b["cidr"], except_=b.get("except"))) for b in store_egress_blocks(cfg, cluster)]
            egress.append(np.NetworkPolicyEgressRuleArgs(to=blocks, ports=[np.NetworkPolicyPortArgs(protocol="TCP", port=store_port(cluster.object_store.endpoint))]))
        policy("allow-dns-and-object-store", policy_types=["Egress"], egress=egress)
