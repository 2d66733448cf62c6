"""The container images each pinned chart runs, at its pinned version, with where each fact comes from.

Upstream's values.yaml are not part of this project (they are upstream data), so what they say about
images is recorded here: for every image node of a chart's values (the dotted path), the default
fields at the pinned version, the values flag that turns the component on and its default. Images
that an operator starts at run time (the GPU operator's driver, toolkit, device plugin, ...;
Prometheus and Alertmanager started by prometheus-operator) are configured through those same values,
so they are here too. ``tests/infratech/test_mirror_list.py`` checks every entry, and that no image
node of the upstream values is missing, against ``../shared/reference/upstream``: moving a pin in
``infratech/program/platform/charts.py`` without updating this table fails that test.

Styles (how the chart's templates join the fields):
  ``nvidia``   ``{repository}/{image}:{version}``, version defaulting to the chart's appVersion
  ``registry`` ``{registry}/{repository}:{tag}``, tag defaulting to the appVersion
  ``repo``     ``{repository}:{tag}``, tag defaulting to the appVersion
  ``string``   the value itself is the whole reference
  ``certmgr``  ``{repository}`` or quay.io/jetstack/{name}, tag defaulting to the appVersion
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class ImageNode:
    path: str  # dotted path of the image node in the chart's values
    style: str
    fields: dict = field(default_factory=dict)  # upstream defaults at the pinned version (only image keys)
    when: Optional[tuple[str, bool]] = None  # (values flag, its upstream default): the image runs when true
    note: str = ""
    # what the values file holds in git at the tag, where the release rewrites it (kueue, jobset)
    git: Optional[dict] = None


@dataclass(frozen=True)
class ChartImages:
    version: str  # the chart version this entry was read at: must equal the pin
    app_version: str  # what an empty tag becomes
    nodes: tuple[ImageNode, ...]
    # image nodes of the upstream values that we do not list, with why (completeness test)
    not_run: dict = field(default_factory=dict)
    # subcharts whose values are not in the reference data: their images cannot be listed offline
    unlisted_subcharts: dict = field(default_factory=dict)


def _n(path: str, style: str, when: Optional[tuple[str, bool]] = None, note: str = "", git: Optional[dict] = None,
       **fields) -> ImageNode:
    return ImageNode(path, style, dict(fields), when, note, git)


_NV = "nvcr.io/nvidia"
_NVCN = "nvcr.io/nvidia/cloud-native"
_SLURM_TAG = "26.05-ubuntu26.04"  # slurm-operator v1.2.1 charts/slurm/values.yaml
_ALPINE = "docker.io/library/alpine"

CHARTS: dict[str, ChartImages] = {
    # NVIDIA/gpu-operator v26.7.0 deployments/gpu-operator/values.yaml; appVersion stamped at release
    # (the tag: reference README); operator/validator/nodeStatusExporter have no version: appVersion
    "gpu-operator": ChartImages("v26.7.0", "v26.7.0", (
        _n("operator", "nvidia", repository=_NV, image="gpu-operator"),
        _n("validator", "nvidia", repository=_NV, image="gpu-operator"),
        _n("driver", "nvidia", ("driver.enabled", True), repository=_NV, image="driver", version="595.91.07",
           note="the operator appends -<os><version> to the tag per node OS (gpu-operator docs)"),
        _n("driver.manager", "nvidia", ("driver.enabled", True), repository=_NVCN, image="k8s-driver-manager", version="v0.12.0"),
        _n("toolkit", "nvidia", ("toolkit.enabled", True), repository="nvcr.io/nvidia/k8s", image="container-toolkit", version="v1.20.0"),
        _n("devicePlugin", "nvidia", ("devicePlugin.enabled", True), repository=_NV, image="k8s-device-plugin", version="v0.20.0"),
        _n("dcgm", "nvidia", ("dcgm.enabled", False), repository=_NVCN, image="dcgm", version="4.6.0-1-ubuntu24.04"),
        _n("dcgmExporter", "nvidia", ("dcgmExporter.enabled", True), repository="nvcr.io/nvidia/k8s", image="dcgm-exporter",
           version="4.6.0-4.8.3-distroless"),
        _n("gfd", "nvidia", ("gfd.enabled", True), repository=_NV, image="k8s-device-plugin", version="v0.20.0"),
        _n("migManager", "nvidia", ("migManager.enabled", True), repository=_NVCN, image="k8s-mig-manager", version="v0.15.0"),
        _n("nodeStatusExporter", "nvidia", ("nodeStatusExporter.enabled", False), repository=_NV, image="gpu-operator"),
        _n("gds", "nvidia", ("gds.enabled", False), repository=_NVCN, image="nvidia-fs", version="2.29.4"),
        _n("gdrcopy", "nvidia", ("gdrcopy.enabled", False), repository=_NVCN, image="gdrdrv", version="v2.6"),
    ), not_run={
        # sandboxWorkloads.enabled is false upstream (values.yaml) and never set by us: the sandbox/vGPU/CC
        # operands below are started only for KubeVirt/Kata sandboxes
        "vgpuManager": "sandbox workloads (vGPU host driver, no public image: repository empty upstream)",
        "vgpuManager.driverManager": "sandbox workloads", "vgpuDeviceManager": "sandbox workloads",
        "vfioManager": "sandbox workloads", "vfioManager.driverManager": "sandbox workloads",
        "sandboxDevicePlugin": "sandbox workloads", "kataSandboxDevicePlugin": "sandbox workloads",
        "ccManager": "confidential computing, sandbox workloads only",
        "draDriver": "DRA driver, not enabled by the platform (device plugin used)",
    }, unlisted_subcharts={
        # Chart.yaml at v26.7.0 depends on node-feature-discovery 0.19.0 (reference SOURCE.txt caveat)
        "node-feature-discovery": "0.19.0 (condition nfd.enabled): registry.k8s.io/nfd/node-feature-discovery:v0.19.0 "
                                  "by that chart's appVersion; its values are not in the reference data",
    }),
    # kubernetes-sigs/kueue v0.19.2 charts/kueue/values.yaml: git holds the staging image; the release
    # rewrites it to registry.k8s.io/kueue/kueue:<GIT_TAG> for vX.Y.Z tags (hack/helm-chart-package.sh)
    "kueue": ChartImages("0.19.2", "v0.19.2", (
        _n("controllerManager.manager.image", "repo", repository="registry.k8s.io/kueue/kueue", tag="v0.19.2",
           git={"repository": "us-central1-docker.pkg.dev/k8s-staging-images/kueue/kueue", "tag": "release-0.19"}),
    ), not_run={"kueueViz.backend.image": "enableKueueViz is false upstream",
                "kueueViz.frontend.image": "enableKueueViz is false upstream"}),
    # kubernetes-sigs/jobset v0.12.0: git has a staging :main image; the platform sets
    # registry.k8s.io/jobset/jobset:v0.12.0 (infratech/program/platform/trainer.py)
    "jobset": ChartImages("0.12.0", "v0.12.0", (
        _n("image", "repo", repository="registry.k8s.io/jobset/jobset", tag="v0.12.0",
           git={"repository": "us-central1-docker.pkg.dev/k8s-staging-images/jobset/jobset", "tag": "main"}),
    )),
    # kubeflow/trainer v2.3.0 charts/kubeflow-trainer/values.yaml: "tag defaults to the chart version"
    "kubeflow-trainer": ChartImages("2.3.0", "v2.3.0", (
        _n("image", "registry", registry="ghcr.io", repository="kubeflow/trainer/trainer-controller-manager"),
        _n("dataCache.cacheImage", "registry", ("dataCache.enabled", False), registry="ghcr.io",
           repository="kubeflow/trainer/data-cache"),
        _n("runtimes.installer.image", "registry", ("runtimes.defaultEnabled", False), registry="docker.io",
           repository="alpine", tag="3.21"),
    ), not_run={
        # runtimes.*.enabled false upstream and runtimes.defaultEnabled false (platform): our
        # ClusterTrainingRuntime uses the training image instead
        "runtimes.deepspeedDistributed.image": "runtime not installed", "runtimes.mlxDistributed.image": "runtime not installed",
        "runtimes.xgboostDistributed.image": "runtime not installed",
        "runtimes.torchtuneDistributed.image": "runtime not installed",
    }),
    # yandex-cloud/k8s-csi-s3 v0.43.7 deploy/helm/csi-s3/values.yaml (images.*, whole references)
    "csi-s3": ChartImages("0.43.7", "0.43.7", (
        _n("images.registrar", "string", value="cr.yandex/crp9ftr22d26age3hulg/yandex-cloud/csi-s3/csi-node-driver-registrar:v2.16.0"),
        _n("images.provisioner", "string", value="cr.yandex/crp9ftr22d26age3hulg/yandex-cloud/csi-s3/csi-provisioner:v6.2.0"),
        _n("images.csi", "string", value="cr.yandex/crp9ftr22d26age3hulg/yandex-cloud/csi-s3/csi-s3-driver:0.43.7"),
    )),
    # prometheus-community/helm-charts kube-prometheus-stack-88.5.3 values.yaml; appVersion v0.93.1
    # (prometheus-operator); Prometheus and Alertmanager are started by the operator from these values
    "kube-prometheus-stack": ChartImages("88.5.3", "v0.93.1", (
        _n("prometheusOperator.image", "registry", registry="quay.io", repository="prometheus-operator/prometheus-operator"),
        _n("prometheusOperator.prometheusConfigReloader.image", "registry", registry="quay.io",
           repository="prometheus-operator/prometheus-config-reloader"),
        _n("prometheusOperator.admissionWebhooks.patch.image", "registry", ("prometheusOperator.admissionWebhooks.patch.enabled", True),
           registry="ghcr.io", repository="jkroepke/kube-webhook-certgen", tag="1.8.7"),
        _n("prometheus.prometheusSpec.image", "registry", registry="quay.io", repository="prometheus/prometheus",
           tag="v3.14.0-distroless"),
        _n("alertmanager.alertmanagerSpec.image", "registry", ("alertmanager.enabled", True), registry="quay.io",
           repository="prometheus/alertmanager", tag="v0.34.0"),
    ), not_run={
        "crds.upgradeJob.image.busybox": "crds.upgradeJob.enabled is false upstream",
        "crds.upgradeJob.image.kubectl": "crds.upgradeJob.enabled is false upstream",
        "prometheusOperator.admissionWebhooks.deployment.image": "admissionWebhooks.deployment.enabled is false upstream",
        "prometheusOperator.thanosImage": "Thanos sidecar not configured by the platform",
        "thanosRuler.thanosRulerSpec.image": "thanosRuler.enabled is false upstream",
    }, unlisted_subcharts={
        # Chart.yaml 88.5.3 dependencies (conditions default true in values.yaml)
        "kube-state-metrics": "8.4.0 (kubeStateMetrics.enabled)",
        "prometheus-node-exporter": "4.56.1 (nodeExporter.enabled)",
        "grafana": "12.11.1 (grafana.enabled)",
    }),
    # kedacore/charts v2.20.2 keda/values.yaml: empty tag is the appVersion 2.20.2
    "keda": ChartImages("2.20.2", "2.20.2", (
        _n("image.keda", "registry", registry="ghcr.io", repository="kedacore/keda"),
        _n("image.metricsApiServer", "registry", registry="ghcr.io", repository="kedacore/keda-metrics-apiserver"),
        _n("image.webhooks", "registry", registry="ghcr.io", repository="kedacore/keda-admission-webhooks"),
    )),
    # cert-manager/cert-manager v1.21.1 deploy/charts/cert-manager/values.yaml: repository "" means
    # imageRegistry quay.io + imageNamespace jetstack + name; appVersion stamped at release (v1.21.1)
    "cert-manager": ChartImages("v1.21.1", "v1.21.1", (
        _n("image", "certmgr", repository="", name="cert-manager-controller"),
        _n("webhook.image", "certmgr", repository="", name="cert-manager-webhook"),
        _n("cainjector.image", "certmgr", ("cainjector.enabled", True), repository="", name="cert-manager-cainjector"),
        _n("acmesolver.image", "certmgr", repository="", name="cert-manager-acmesolver",
           note="started by the controller for ACME HTTP-01 challenges"),
        _n("startupapicheck.image", "certmgr", ("startupapicheck.enabled", True), repository="",
           name="cert-manager-startupapicheck"),
    )),
    "slurm-operator-crds": ChartImages("1.2.1", "1.2.1", ()),
    # SlinkyProject/slurm-operator v1.2.1 charts/slurm-operator/values.yaml: tag null -> appVersion 1.2.1
    "slurm-operator": ChartImages("1.2.1", "1.2.1", (
        _n("operator.image", "repo", repository="ghcr.io/slinkyproject/slurm-operator"),
        _n("webhook.image", "repo", ("webhook.enabled", True), repository="ghcr.io/slinkyproject/slurm-operator-webhook"),
    )),
    # charts/slurm/values.yaml v1.2.1 (Slurm 26.05); alpine :latest upstream, the platform pins it
    "slurm": ChartImages("1.2.1", "26.05", (
        _n("controller.slurmctld.image", "repo", repository="ghcr.io/slinkyproject/slurmctld", tag=_SLURM_TAG),
        _n("controller.reconfigure.image", "repo", repository="ghcr.io/slinkyproject/slurmctld", tag=_SLURM_TAG),
        _n("controller.logfile.image", "repo", repository=_ALPINE, tag="latest"),
        _n("restapi.slurmrestd.image", "repo", repository="ghcr.io/slinkyproject/slurmrestd", tag=_SLURM_TAG),
        _n("accounting.slurmdbd.image", "repo", ("accounting.enabled", False), repository="ghcr.io/slinkyproject/slurmdbd",
           tag=_SLURM_TAG),
        _n("loginsetDefaults.login.image", "repo", repository="ghcr.io/slinkyproject/login", tag=_SLURM_TAG),
        _n("loginsetDefaults.initconf.image", "repo", repository=_ALPINE, tag="latest"),
        _n("nodesetDefaults.slurmd.image", "repo", repository="ghcr.io/slinkyproject/slurmd", tag=_SLURM_TAG),
        _n("nodesetDefaults.logfile.image", "repo", repository=_ALPINE, tag="latest"),
    )),
}

# Self-built nodes: NVIDIA's CUDA network repository (roles/nvidia_driver/vars/main.yml builds
# .../cuda/repos/<distro>/<arch>/, key 3bf863cc.pub), which serves the driver and, for
# roles/nvidia_container_toolkit, the Container Toolkit packages too
NVIDIA_APT = "https://developer.download.nvidia.com/compute/cuda/repos/{distro}/{arch}/"
NVIDIA_APT_DEFAULT = {"distro": "debian12", "arch": "x86_64"}
# RKE2 release artifacts (roles/rke2_node: rke2_node_install_method artifacts); {v} is the version
RKE2_ARTIFACTS = ("rke2.linux-{arch}.tar.gz", "rke2-images.linux-{arch}.tar.zst", "sha256sum-{arch}.txt")
RKE2_RELEASES = "https://github.com/rancher/rke2/releases/download/{version}/"
