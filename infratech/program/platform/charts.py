"""Every Helm chart the platform installs, pinned: repository, chart, exact version, namespace.

Versions are the ones researched and recorded in the project's reference notes (chart default
values and CRDs of exactly these versions are what the tests validate against). Change a version
here and the tests re-check our values against that version's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from ...config.mirror import Mirror
from ...mirror.refs import chart_source, mirror_values


@dataclass(frozen=True)
class ChartPin:
    key: str  # the chart's name, and the folder of its upstream reference data
    chart: str  # chart name in ``repo``, or a full ``oci://`` reference
    version: str  # exact version, never a range
    repo: Optional[str]  # https Helm repository; None for OCI charts
    namespace: str

    @property
    def source(self) -> str:
        return self.chart if self.repo is None else f"{self.repo} {self.chart}"


PINS: dict[str, ChartPin] = {
    p.key: p
    for p in (
        ChartPin("gpu-operator", "gpu-operator", "v26.7.0", "https://helm.ngc.nvidia.com/nvidia", "gpu-operator"),
        ChartPin("kueue", "oci://registry.k8s.io/kueue/charts/kueue", "0.19.2", None, "kueue-system"),
        ChartPin("jobset", "oci://registry.k8s.io/jobset/charts/jobset", "0.12.0", None, "jobset-system"),
        ChartPin("kubeflow-trainer", "oci://ghcr.io/kubeflow/charts/kubeflow-trainer", "2.3.0", None, "kubeflow-system"),
        # kube-system, as upstream installs it: its node plugin mounts FUSE file systems (privileged)
        ChartPin("csi-s3", "csi-s3", "0.43.7", "https://yandex-cloud.github.io/k8s-csi-s3/charts", "kube-system"),
        ChartPin(
            "kube-prometheus-stack", "kube-prometheus-stack", "88.5.3",
            "https://prometheus-community.github.io/helm-charts", "monitoring",
        ),
        ChartPin("keda", "keda", "2.20.2", "https://kedacore.github.io/charts", "keda"),
        ChartPin("cert-manager", "oci://quay.io/jetstack/charts/cert-manager", "v1.21.1", None, "cert-manager"),
        # SchedMD's Slinky, installed in this order (docs/installation.md at v1.2.1): the CRDs, the
        # operator (its webhook certificate comes from cert-manager), then the Slurm cluster (26.05)
        ChartPin("slurm-operator-crds", "oci://ghcr.io/slinkyproject/charts/slurm-operator-crds", "1.2.1", None, "slinky"),
        ChartPin("slurm-operator", "oci://ghcr.io/slinkyproject/charts/slurm-operator", "1.2.1", None, "slinky"),
        ChartPin("slurm", "oci://ghcr.io/slinkyproject/charts/slurm", "1.2.1", None, "slurm"),
    )
}


def release(
    pin: ChartPin,
    values: Any,
    opts: pulumi.ResourceOptions,
    name: Optional[str] = None,
    mirror: Optional[Mirror] = None,
) -> k8s.helm.v3.Release:
    """A Helm release of a pinned chart into its namespace (created beforehand by the caller, so
    that its labels, such as Pod Security, are ours). Atomic: a failed install or upgrade rolls back.
    With ``mirror`` (the stack's ``mirror:``), every image the chart runs is the mirror's and the
    chart comes from the mirror's OCI chart repository where one is given."""
    chart, repo = pin.chart, pin.repo
    if mirror is not None:
        values = mirror_values(pin.key, pin.version, values, mirror.registry, mirror.prefix)
        if mirror.chart_repository:
            chart, repo = chart_source(mirror.chart_repository, pin.key), None
    return k8s.helm.v3.Release(
        name or pin.key,
        name=pin.key,
        chart=chart,
        version=pin.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo else None,
        namespace=pin.namespace,
        create_namespace=False,
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        timeout=900,
        max_history=5,
        opts=opts,
    )
