"""Monitoring: kube-prometheus-stack, the GPU and queue dashboards, and the alert rules.

Prometheus picks up every ServiceMonitor, PodMonitor and PrometheusRule in the cluster, not only
those carrying the chart's release label (``*SelectorNilUsesHelmValues: false``): the GPU
operator's DCGM exporter, Kueue and vLLM bring their own monitors. Grafana's admin password is
generated and kept as a Pulumi secret, never the chart's well-known default. The dashboards and
rules are data files in ``infratech/program/platform/monitoring/`` (docs/monitoring.md).

The data beside this module: Grafana dashboards (``dashboards/*.json``) and the PrometheusRule
spec (``rules.yaml``); docs/monitoring.md.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from ....config import StackConfig
from ...handle import ClusterHandle
from ..base import Namespace, child_opts, meta
from ..charts import PINS, release
from ..storage import MODELS_CLASS, block_storage

GRAFANA_ADMIN_SECRET = "grafana-admin"
PENDING_ALERT = "KueueWorkloadsPendingTooLong"


def _data(name: str) -> str:
    return resources.files("infratech.program.platform.monitoring").joinpath(name).read_text(encoding="utf-8")


def dashboards() -> dict[str, str]:
    """Dashboard file name -> JSON text, as shipped."""
    folder = resources.files("infratech.program.platform.monitoring").joinpath("dashboards")
    return {f.name: f.read_text(encoding="utf-8") for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".json")}


def rules(cfg: StackConfig) -> dict[str, Any]:
    """The PrometheusRule spec, with the stack's pending-job limit applied to the pending alert."""
    spec = yaml.safe_load(_data("rules.yaml"))
    for group in spec["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == PENDING_ALERT:
                rule["for"] = f"{cfg.platform.pending_alert_minutes}m"
    return spec


def prometheus_values(cfg: StackConfig, cluster: ClusterHandle) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "retention": "15d",
    }
    if block_storage(cfg, cluster) is not None and cfg.platform.storage:
        spec["storageSpec"] = {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": MODELS_CLASS,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "50Gi"}},
                }
            }
        }
    return {
        "prometheus": {"prometheusSpec": spec},
        # node-exporter reads the host (hostNetwork, hostPID, /proc): it runs in kube-system, so the
        # monitoring namespace needs no privileges and the GPU operator's stays the only privileged one
        "prometheus-node-exporter": {"namespaceOverride": "kube-system"},
        "grafana": {"admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"}},
    }


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, cluster: ClusterHandle, provider, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:platform:Monitoring", name, None, opts)
        pin = PINS["kube-prometheus-stack"]
        ns = Namespace(pin.namespace, provider, self, pod_security="baseline", labels={"infratech.io/component": "monitoring"})
        password = random.RandomPassword("grafana-admin", length=32, special=False, opts=pulumi.ResourceOptions(parent=self))
        admin = k8s.core.v1.Secret(
            "grafana-admin",
            metadata=meta(GRAFANA_ADMIN_SECRET, ns.name),
            type="Opaque",
            string_data={"admin-user": "admin", "admin-password": password.result},
            opts=child_opts(self, provider, depends_on=[ns.resource]),
        )
        self.release = stack = release(pin, prometheus_values(cfg, cluster), child_opts(self, provider, depends_on=[ns.resource, admin]),
                                     mirror=cfg.mirror)
        for file_name, text in dashboards().items():
            json.loads(text)  # a broken file fails here, not in Grafana
            stem = file_name.removesuffix(".json")
            k8s.core.v1.ConfigMap(
                f"dashboard-{stem}",
                metadata=meta(f"dashboard-{stem}", ns.name, labels={"grafana_dashboard": "1"}),
                data={file_name: text},
                opts=child_opts(self, provider, depends_on=[ns.resource]),
            )
        k8s.apiextensions.CustomResource(
            "rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=meta("infratech", ns.name),
            spec=rules(cfg),
            opts=child_opts(self, provider, depends_on=[stack]),
        )
        self.register_outputs({"grafana_admin_password": pulumi.Output.secret(password.result)})
