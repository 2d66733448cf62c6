"""The platform declared on each provider's cluster differs exactly where the providers differ."""

from __future__ import annotations

import pytest
import yaml

from infratech.cli.plan import record
from infratech.cli.plan.runtime import SECRET

RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
KUEUE = "kubernetes:kueue.x-k8s.io/v1beta2:"


@pytest.fixture(scope="module")
def plans(project):
    return {s: record(project, s) for s in ("ovh-gra11", "scaleway-fr-par-2-h100", "existing-onprem")}


def releases(rec) -> dict[str, dict]:
    return {r.inputs["name"]: r.inputs for r in rec.by_type(RELEASE)}


def objects(rec, kind: str) -> list[dict]:
    return [r.inputs for r in rec.resources if r.type.endswith(f":{kind}")]


def one(rec, kind: str, name: str, namespace: str | None = None) -> dict:
    found = [o for o in objects(rec, kind) if o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace]
    assert len(found) == 1, f"{kind} {namespace}/{name}: {len(found)} found"
    return found[0]


# -- GPU stack ---------------------------------------------------------------------------------
def test_ovh_gets_the_operator_with_driver_and_toolkit(plans):
    values = releases(plans["ovh-gra11"])["gpu-operator"]["values"]
    assert values["driver"] == {"enabled": True, "version": "595.91.07", "kernelModuleType": "auto"}
    assert values["toolkit"] == {"enabled": True}, "MKS nodes: no CONTAINERD_* overrides"
    assert values["nfd"] == {"enabled": True}
    assert values["dcgmExporter"]["enabled"] is True and values["dcgmExporter"]["serviceMonitor"]["enabled"] is True
    assert values["daemonsets"]["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    assert values["migManager"] == {"enabled": False}, "no pool asked for MIG"
    assert "devicePlugin" not in values, "no pool asked for time-slicing"


def test_scaleway_gets_no_second_operator(plans):
    rec = plans["scaleway-fr-par-2-h100"]
    assert "gpu-operator" not in releases(rec)
    assert not rec.by_type("infratech:platform:GpuStack")
    assert "gpu-operator" not in [o["metadata"]["name"] for o in objects(rec, "Namespace")]
    assert set(releases(rec)) == {"kueue", "jobset", "kubeflow-trainer", "csi-s3", "kube-prometheus-stack", "keda", "cert-manager"}


def test_existing_cluster_keeps_its_driver_and_toolkit(plans):
    values = releases(plans["existing-onprem"])["gpu-operator"]["values"]
    assert values["driver"] == {"enabled": False} and values["toolkit"] == {"enabled": False}


def test_rke2_without_toolkit_tells_the_operator_where_containerd_is(variant):
    rec = variant("existing-onprem", lambda c: c["infratech:existing"].update(toolkit_preinstalled=False))
    toolkit = releases(rec)["gpu-operator"]["values"]["toolkit"]
    env = {e["name"]: e["value"] for e in toolkit["env"]}
    assert toolkit["enabled"] is True
    # a current RKE2 (containerd 2) reads config-v3.toml.tmpl first: a runtime written to
    # config.toml.tmpl beside it would never reach containerd
    assert env["CONTAINERD_CONFIG"] == "/var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.tmpl"
    assert env["CONTAINERD_SOCKET"] == "/run/k3s/containerd/containerd.sock"


# RKE2 and k3s ship containerd 2 from v1.31.6 and v1.32.2 on (rancher/rke2 Dockerfile, hardened-containerd)
@pytest.mark.parametrize("distribution,version,template", [
    ("rke2", "1.31.5", "config.toml.tmpl"), ("rke2", "1.31.6", "config-v3.toml.tmpl"),
    ("rke2", "1.32.1", "config.toml.tmpl"), ("rke2", "1.32.2", "config-v3.toml.tmpl"),
    ("rke2", "1.30", "config.toml.tmpl"), ("rke2", "1.33", "config-v3.toml.tmpl"),
    ("k3s", "1.31.4", "config.toml.tmpl"), ("k3s", "1.34.1", "config-v3.toml.tmpl"),
])
def test_the_toolkit_writes_the_template_of_the_clusters_containerd(variant, distribution, version, template):
    def edit(c):
        c["infratech:existing"].update(toolkit_preinstalled=False, distribution=distribution, kube_version=version)
    env = {e["name"]: e["value"] for e in releases(variant("existing-onprem", edit))["gpu-operator"]["values"]["toolkit"]["env"]}
    assert env["CONTAINERD_CONFIG"] == f"/var/lib/rancher/{distribution}/agent/etc/containerd/{template}"


def test_operator_preinstalled_on_an_existing_cluster_is_not_installed_again(variant):
    rec = variant("existing-onprem", lambda c: c["infratech:existing"].update(gpu_operator_preinstalled=True))
    assert "gpu-operator" not in releases(rec)


def test_time_slicing_and_mig_only_where_a_pool_asks(variant):
    def edit(c):
        pools = c["infratech:pools"]
        pools[2].update(gpu_sharing="time-slicing", time_slicing_replicas=4)  # l40s inference
        pools.append({"name": "h100-mig", "flavor": "h100-380", "role": "inference", "gpu_sharing": "mig", "mig_profile": "all-1g.10gb"})

    rec = variant("ovh-gra11", edit)
    values = releases(rec)["gpu-operator"]["values"]
    config = values["devicePlugin"]["config"]
    assert config["create"] is True and config["default"] == "exclusive"
    shared = yaml.safe_load(config["data"]["time-slicing-l40s"])
    assert shared["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert "sharing" not in yaml.safe_load(config["data"]["exclusive"])
    assert values["migManager"] == {"enabled": True}
    pools = {p.inputs["name"]: p.inputs["template"]["metadata"]["labels"] for p in rec.by_type("ovh:CloudProject/kubeNodePool:KubeNodePool")}
    assert pools["l40s"]["nvidia.com/device-plugin.config"] == "time-slicing-l40s"
    assert pools["h100-mig"]["nvidia.com/mig.config"] == "all-1g.10gb"
    assert not any(k.startswith("nvidia.com/") for k in pools["h100"]), "training pools are never shared"


def test_only_the_gpu_operator_namespace_is_privileged(plans):
    for stack, rec in plans.items():
        levels = {o["metadata"]["name"]: o["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] for o in objects(rec, "Namespace")}
        privileged = sorted(n for n, level in levels.items() if level == "privileged")
        expected = [] if stack.startswith("scaleway") else ["gpu-operator"]
        assert privileged == expected, stack
        assert levels["pretraining"] == "restricted"


# -- queues ------------------------------------------------------------------------------------
def test_a_flavour_per_gpu_model_and_a_queue_per_team(plans):
    rec = plans["ovh-gra11"]
    flavors = {o["metadata"]["name"]: o["spec"] for o in objects(rec, "ResourceFlavor")}
    assert set(flavors) == {"h100-80gb", "l40s"}
    assert flavors["h100-80gb"]["nodeLabels"] == {"infratech.io/gpu-model": "h100-80gb"}
    assert flavors["h100-80gb"]["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    assert all(r.type.startswith(KUEUE) for r in rec.resources if r.type.split(":")[-1] in ("ResourceFlavor", "ClusterQueue", "LocalQueue", "Cohort"))
    cq = one(rec, "ClusterQueue", "applied")["spec"]
    assert cq["cohortName"] == "infratech"
    assert cq["namespaceSelector"] == {"matchLabels": {"infratech.io/team": "applied"}}
    (group,) = cq["resourceGroups"]
    assert group["coveredResources"] == ["nvidia.com/gpu"]
    quotas = {f["name"]: f["resources"][0]["nominalQuota"] for f in group["flavors"]}
    assert quotas == {"h100-80gb": 2, "l40s": 3}
    pre = {f["name"]: f["resources"][0]["nominalQuota"] for f in one(rec, "ClusterQueue", "pretraining")["spec"]["resourceGroups"][0]["flavors"]}
    assert pre == {"h100-80gb": 4, "l40s": 0}, "a flavour without quota is listed so the team can borrow it"
    assert one(rec, "LocalQueue", "pretraining", "pretraining")["spec"] == {"clusterQueue": "pretraining"}
    assert rec.outputs["queues"]["pretraining"] == {"cluster_queue": "pretraining", "local_queue": "pretraining", "namespace": "pretraining"}


def test_kueue_configuration(plans):
    values = releases(plans["ovh-gra11"])["kueue"]["values"]
    assert values["enablePrometheus"] is True
    conf = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
    assert conf["apiVersion"] == "config.kueue.x-k8s.io/v1beta2"
    assert conf["waitForPodsReady"]["blockAdmission"] is True
    existing = yaml.safe_load(releases(plans["existing-onprem"])["kueue"]["values"]["managerConfig"]["controllerManagerConfigYaml"])
    assert existing["waitForPodsReady"]["timeout"] == "10m", "fixed-size GPU pools: the pods' start only"
    assert set(conf["integrations"]["frameworks"]) == {"batch/job", "jobset.x-k8s.io/jobset", "trainer.kubeflow.org/trainjob"}
    assert conf["manageJobsWithoutQueueName"] is True
    assert conf["managedJobsNamespaceSelector"] == {"matchExpressions": [{"key": "infratech.io/team", "operator": "Exists"}]}
    assert conf["fairSharing"]["preemptionStrategies"]


def test_borrowing_limits_and_weights_reach_the_cluster_queue(variant):
    def edit(c):
        c["infratech:teams"][0].update(gpu_borrowing_limit={"h100-80gb": 2}, fair_share_weight=3)

    rec = variant("ovh-gra11", edit)
    spec = one(rec, "ClusterQueue", "pretraining")["spec"]
    assert spec["fairSharing"] == {"weight": 3}
    h100 = next(f for f in spec["resourceGroups"][0]["flavors"] if f["name"] == "h100-80gb")
    assert h100["resources"] == [{"name": "nvidia.com/gpu", "nominalQuota": 4, "borrowingLimit": 2}]


# -- training ------------------------------------------------------------------------------------
def test_trainer_uses_its_own_jobset_pinned_to_the_release(plans):
    rels = releases(plans["ovh-gra11"])
    assert rels["kubeflow-trainer"]["values"]["jobset"] == {"install": False}
    assert rels["jobset"]["values"]["image"] == {"pullPolicy": "IfNotPresent", "repository": "registry.k8s.io/jobset/jobset", "tag": "v0.12.0"}
    runtime = one(plans["ovh-gra11"], "ClusterTrainingRuntime", "torch-distributed-infratech")["spec"]
    (job,) = runtime["template"]["spec"]["replicatedJobs"]
    pod = job["template"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "ghcr.io/infratech-souveraine/llm-train:0.1.0"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in pod["containers"][0]["volumeMounts"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"}} in pod["volumes"]
    assert any(e["name"] == "TORCH_NCCL_ASYNC_ERROR_HANDLING" for e in pod["containers"][0]["env"])


# -- storage -------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack,provisioner", [("ovh-gra11", "cinder.csi.openstack.org"), ("scaleway-fr-par-2-h100", "csi.scaleway.com")])
def test_retain_classes_on_the_provider_csi(plans, stack, provisioner):
    classes = {o["metadata"]["name"]: o for o in objects(plans[stack], "StorageClass")}
    assert set(classes) == {"infratech-checkpoints", "infratech-models"}
    for sc in classes.values():
        assert sc["provisioner"] == provisioner and sc["reclaimPolicy"] == "Retain"
        assert sc["volumeBindingMode"] == "WaitForFirstConsumer" and sc["allowVolumeExpansion"] is True


def test_existing_cluster_gets_block_classes_only_when_it_names_its_csi(plans, variant):
    assert not objects(plans["existing-onprem"], "StorageClass")
    rec = variant("existing-onprem", lambda c: c["infratech:existing"].update(block_storage_provisioner="rbd.csi.ceph.com", block_storage_parameters={"pool": "ssd"}))
    assert {o["provisioner"] for o in objects(rec, "StorageClass")} == {"rbd.csi.ceph.com"}


@pytest.mark.parametrize("stack,endpoint", [
    ("ovh-gra11", "https://s3.gra.io.cloud.ovh.net"),
    ("scaleway-fr-par-2-h100", "https://s3.fr-par.scw.cloud"),
    ("existing-onprem", "https://s3.dc1.example.org"),
])
def test_s3_csi_points_at_the_stack_object_store_never_the_chart_default(plans, stack, endpoint):
    secret = releases(plans[stack])["csi-s3"]["values"]["secret"]
    assert secret["endpoint"] == endpoint
    assert secret["accessKey"] == SECRET and secret["secretKey"] == SECRET


# -- monitoring ------------------------------------------------------------------------------------
def test_prometheus_scrapes_every_monitor_and_grafana_has_no_default_password(plans):
    rec = plans["ovh-gra11"]
    values = releases(rec)["kube-prometheus-stack"]["values"]
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False and spec["ruleSelectorNilUsesHelmValues"] is False
    assert values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    admin = one(rec, "Secret", "grafana-admin", "monitoring")
    assert admin["stringData"] == SECRET or admin["stringData"]["admin-password"] == SECRET
    dashboards = [o for o in objects(rec, "ConfigMap") if o["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(dashboards) >= 2
    rule = one(rec, "PrometheusRule", "infratech", "monitoring")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert alerts["KueueWorkloadsPendingTooLong"]["for"] == "60m", "the stack's pending_alert_minutes"


# -- tenancy ---------------------------------------------------------------------------------------
def test_team_namespace_guardrails(plans):
    rec = plans["ovh-gra11"]
    quota = one(rec, "ResourceQuota", "team", "pretraining")["spec"]["hard"]
    assert quota["services.loadbalancers"] == "0" and quota["services.nodeports"] == "0"
    assert quota["requests.nvidia.com/gpu"] == "7", "no borrowing limit: the cluster's GPUs at max nodes (4 h100 + 3 l40s)"
    binding = one(rec, "RoleBinding", "team-member", "pretraining")
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "infratech:pretraining"}]
    assert binding["roleRef"]["kind"] == "Role", "a namespaced role: nothing outside the team's namespace"
    policies = {o["metadata"]["name"] for o in objects(rec, "NetworkPolicy") if o["metadata"]["namespace"] == "pretraining"}
    assert policies == {"default-deny", "allow-dns", "allow-within-namespace", "allow-object-store", "allow-prometheus"}
    deny = one(rec, "NetworkPolicy", "default-deny", "pretraining")["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and not deny.get("ingress") and not deny.get("egress")
    store = one(rec, "NetworkPolicy", "allow-object-store", "pretraining")["spec"]["egress"][0]
    assert store["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert store["to"][0]["ipBlock"]["except"] == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]
    secret = one(rec, "Secret", "object-store", "pretraining")
    assert secret["stringData"] == SECRET or secret["stringData"]["AWS_SECRET_ACCESS_KEY"] == SECRET


def _teams(*teams: dict):
    return lambda c: c.update({"infratech:teams": list(teams)})


def test_team_gpu_quota_is_its_quota_plus_what_the_cohort_can_lend(variant):
    """Kueue lends a team at most the others' unused nominal quota: with 1 + 1 H100s in the
    cohort and no L40S quota anywhere, a team can never run more than 2 GPUs, not the cluster's 7."""
    rec = variant("ovh-gra11", _teams({"name": "pretraining", "gpu_quota": {"h100-80gb": 1}},
                                      {"name": "applied", "gpu_quota": {"h100-80gb": 1}}))
    assert one(rec, "ResourceQuota", "team", "pretraining")["spec"]["hard"]["requests.nvidia.com/gpu"] == "2"
    limited = variant("ovh-gra11", _teams({"name": "pretraining", "gpu_quota": {"h100-80gb": 2}, "gpu_borrowing_limit": {"h100-80gb": 1}},
                                          {"name": "applied", "gpu_quota": {"h100-80gb": 2, "l40s": 3}}))
    assert one(limited, "ResourceQuota", "team", "pretraining")["spec"]["hard"]["requests.nvidia.com/gpu"] == "6", "2 + 1 H100 (capped by its limit) + 3 L40S"


def _datasets_gib(rec, namespace: str) -> int:
    claims = [o for o in objects(rec, "PersistentVolumeClaim") if o["metadata"]["namespace"] == namespace]
    return sum(int(c["spec"]["resources"]["requests"]["storage"].removesuffix("Ti")) * 1024 for c in claims)


def test_team_cpu_memory_and_storage_quotas_default_to_its_share_of_the_gpu_nodes(variant):
    """Without cpu_quota/memory_quota_gib: the GPU nodes its GPU ceiling fills (4 x h100-380: 30
    vCPU, 380 GiB each, catalog) plus 16 cores and 64 GiB for CPU work; 500 GiB of volumes beyond
    the datasets claim's nominal size."""
    rec = variant("ovh-gra11", _teams({"name": "pretraining", "gpu_quota": {"h100-80gb": 4}, "gpu_borrowing_limit": {"h100-80gb": 0, "l40s": 0}},
                                      {"name": "applied", "gpu_quota": {"l40s": 3}}))
    hard = one(rec, "ResourceQuota", "team", "pretraining")["spec"]["hard"]
    assert (hard["requests.nvidia.com/gpu"], hard["requests.cpu"], hard["requests.memory"]) == ("4", str(4 * 30 + 16), f"{4 * 380 + 64}Gi")
    assert hard["requests.storage"] == f"{500 + _datasets_gib(rec, 'pretraining')}Gi"


def test_team_quotas_set_in_the_stack_are_used(variant):
    rec = variant("ovh-gra11", _teams({"name": "pretraining", "gpu_quota": {"h100-80gb": 4}, "cpu_quota": 64,
                                       "memory_quota_gib": 256, "storage_quota_gib": 100}))
    hard = one(rec, "ResourceQuota", "team", "pretraining")["spec"]["hard"]
    assert (hard["requests.cpu"], hard["requests.memory"]) == ("64", "256Gi")
    assert hard["requests.storage"] == f"{100 + _datasets_gib(rec, 'pretraining')}Gi"


def test_tenancy_off_keeps_bare_team_namespaces_for_the_queues(variant):
    rec = variant("ovh-gra11", lambda c: c.setdefault("infratech:platform", {}).update(tenancy=False))
    assert {o["metadata"]["name"] for o in objects(rec, "Namespace")} >= {"pretraining", "applied"}
    assert not objects(rec, "NetworkPolicy") and not objects(rec, "ResourceQuota") and not objects(rec, "RoleBinding")
    assert objects(rec, "LocalQueue")


# -- serving ---------------------------------------------------------------------------------------
def test_serving_base_with_the_cluster_ca_and_no_exposure_by_default(plans):
    rec = plans["ovh-gra11"]
    assert {"keda", "cert-manager"} <= set(releases(rec))
    issuers = {o["metadata"]["name"]: o["spec"] for o in objects(rec, "ClusterIssuer")}
    assert issuers["infratech-ca"] == {"ca": {"secretName": "infratech-ca"}}
    assert not objects(rec, "Ingress"), "no serving_host: nothing exposed"


def test_serving_host_gets_an_acme_certificate_and_an_ingress(variant):
    def edit(c):
        c["infratech:platform"] = {
            "serving_host": "llm.example.org",
            "ingress_class": "traefik",
            "acme": {"email": "ops@example.org", "server": "https://acme.example.org/directory"},
        }

    rec = variant("ovh-gra11", edit)
    cert = one(rec, "Certificate", "llm-gateway-tls", "serving")["spec"]
    assert cert["dnsNames"] == ["llm.example.org"] and cert["issuerRef"]["name"] == "infratech-acme"
    (ingress,) = objects(rec, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert ingress["spec"]["tls"] == [{"hosts": ["llm.example.org"], "secretName": "llm-gateway-tls"}]


# -- switches --------------------------------------------------------------------------------------
@pytest.mark.parametrize("switch,gone", [
    ("gpu_operator", {"gpu-operator"}),
    ("monitoring", {"kube-prometheus-stack"}),
    ("serving", {"keda", "cert-manager"}),
    ("storage", {"csi-s3"}),
])
def test_each_component_switches_off(variant, switch, gone):
    rec = variant("ovh-gra11", lambda c: c.setdefault("infratech:platform", {}).update({switch: False}))
    names = set(releases(rec))
    assert not names & gone and names, f"{switch}: {sorted(names)}"


def test_queues_and_trainer_switch_off_together(variant):
    rec = variant("ovh-gra11", lambda c: c.setdefault("infratech:platform", {}).update(kueue=False, trainer=False))
    assert not {"kueue", "jobset", "kubeflow-trainer"} & set(releases(rec))
    assert not objects(rec, "ClusterQueue") and rec.outputs["queues"] == {}


def test_charts_with_service_monitors_wait_for_the_monitoring_crds(plans):
    rec = plans["ovh-gra11"]
    by_name = {r.inputs["name"]: r for r in rec.by_type(RELEASE)}
    prometheus = by_name["kube-prometheus-stack"].urn
    for chart in ("gpu-operator", "kueue", "keda"):
        assert prometheus in by_name[chart].dependencies, chart
