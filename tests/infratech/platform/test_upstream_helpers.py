"""The upstream checks themselves: on small inputs, against the real upstream files, they fail when
they should (a check that never fails proves nothing about the platform)."""

from __future__ import annotations

import textwrap

import pytest
import upstream

from infratech.cli.plan import record
from infratech.cli.plan.runtime import COMPUTED, SECRET, Resource
from infratech.cli.stacks import find_project

pytestmark = pytest.mark.skipif(upstream.upstream_dir() is None, reason=upstream.skip_reason())

GPU = "nvidia.com/gpu"


def cluster_queue(api="kueue.x-k8s.io/v1beta2", quota=4, **spec):
    quota_entry = {"name": GPU, "nominalQuota": quota}
    return {
        "apiVersion": api,
        "kind": "ClusterQueue",
        "metadata": {"name": "team-a", "labels": {"app.kubernetes.io/managed-by": "infratech"}},
        "spec": {"resourceGroups": [{"coveredResources": [GPU], "flavors": [{"name": "l4", "resources": [quota_entry]}]}], **spec},
    }


# --- chart values -------------------------------------------------------------------------------------


# charts whose upstream values.yaml sets nothing: slurm-operator-crds 1.2.1 ships CRDs only
NO_VALUES = {"slurm-operator-crds"}


def test_every_pinned_chart_has_defaults():
    for key in upstream.CHARTS:
        defaults = upstream.chart_defaults(key)
        assert isinstance(defaults, dict) and bool(defaults) != (key in NO_VALUES), key


def test_typo_in_a_value_key_is_reported():
    defaults = upstream.chart_defaults("gpu-operator")
    assert defaults["dcgmExporter"]["enabled"] is True  # the real key
    assert upstream.unknown_value_paths({"dcgmExporter": {"enabled": True}}, defaults) == []
    problems = upstream.unknown_value_paths({"dcgmExporter": {"enable": True}}, defaults)
    assert problems == ["dcgmExporter.enable: not in the chart's default values"]
    assert upstream.chart_value_problems("gpu-operator", {"dcgmExporter": {"enable": True}}) == problems


def test_type_clashes_are_reported_both_ways():
    defaults = upstream.chart_defaults("gpu-operator")
    problems = upstream.unknown_value_paths({"driver": {"enabled": {"really": True}}, "dcgmExporter": True}, defaults)
    assert any(p.startswith("driver.enabled: we set a mapping where the chart's default is a scalar") for p in problems), problems
    assert any(p.startswith("dcgmExporter: we set a scalar where the chart's default is a mapping") for p in problems), problems
    assert len(problems) == 2


def test_free_form_maps_and_lists_accept_anything_below_them():
    defaults = {"nodeSelector": {}, "podLabels": {}, "tolerations": [], "extra": None, "image": {"tag": "v1"}}
    values = {
        "nodeSelector": {"infratech.io/pool": "system"},
        "podLabels": {"a": {"b": "c"}},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        "extra": {"anything": [1, 2]},
        "image": {"tag": None},  # a null deletes a default in Helm
    }
    assert upstream.unknown_value_paths(values, defaults) == []
    # but a free-form map still takes a mapping, a list a list
    assert len(upstream.unknown_value_paths({"nodeSelector": "linux", "tolerations": {"key": "x"}}, defaults)) == 2


def test_free_form_keys_in_real_charts():
    kueue = upstream.chart_defaults("kueue")
    assert kueue["controllerManager"]["featureGates"] == []
    values = {"controllerManager": {"featureGates": [{"name": "TopologyAwareScheduling", "enabled": True}]}}
    assert upstream.chart_value_problems("kueue", values) == []


def test_allowed_undeclared_and_open_paths():
    defaults = {"operator": {"image": "x"}, "grafana": {"enabled": True}}
    assert upstream.unknown_value_paths({"operator": {"version": "v1"}}, defaults, allowed=["operator.version"]) == []
    assert upstream.unknown_value_paths({"operator": {"version": {"a": 1}}}, defaults, allowed=["operator.version"]) == []
    # open (subchart) path: unknown keys below it accepted, clashes with declared keys still reported
    assert upstream.unknown_value_paths({"grafana": {"persistence": {"enabled": True}}}, defaults, open_paths=["grafana"]) == []
    assert upstream.unknown_value_paths({"grafana": {"enabled": {"x": 1}}}, defaults, open_paths=["grafana"]) != []
    for chart, entries in upstream.ALLOWED_UNDECLARED.items():
        assert chart in upstream.CHARTS
        assert all(reason.strip() for reason in entries.values()), chart


def test_subcharts():
    kps = upstream.chart_defaults("kube-prometheus-stack")
    assert isinstance(kps["grafana"], dict) and kps["grafana"]["enabled"] is True
    assert "grafana" in upstream.subchart_paths("kube-prometheus-stack")
    ok = {"grafana": {"admin": {"existingSecret": "grafana-admin"}, "persistence": {"enabled": False}}}
    assert upstream.chart_value_problems("kube-prometheus-stack", ok) == []
    clash = upstream.chart_value_problems("kube-prometheus-stack", {"grafana": {"enabled": {"yes": True}}})
    assert clash and clash[0].startswith("grafana.enabled: we set a mapping")
    # Trainer's jobset subchart is the very jobset version we have data for: checked against it
    assert upstream.subchart_paths("kubeflow-trainer")["jobset"] == "jobset"
    assert upstream.chart_value_problems("kubeflow-trainer", {"jobset": {"install": False, "image": {"tag": "v0.12.0"}}}) == []
    assert upstream.chart_value_problems("kubeflow-trainer", {"jobset": {"instal": False}}) == [
        "jobset.instal: not in the chart's default values"
    ]


def test_cert_manager_values_schema_applies():
    assert upstream.chart_values_schema("cert-manager") is not None
    assert upstream.chart_value_problems("cert-manager", {"crds": {"enabled": True, "keep": True}}) == []
    # declared by the schema, only a comment in values.yaml: known
    assert upstream.chart_value_problems("cert-manager", {"global": {"revisionHistoryLimit": 2}}) == []
    wrong_type = upstream.chart_value_problems("cert-manager", {"replicaCount": "two"})
    assert wrong_type == ["replicaCount: values.schema.json: 'two' is not of type 'number'"]
    typo = upstream.chart_value_problems("cert-manager", {"crds": {"enabeld": True}})
    assert any(p.startswith("crds.enabeld: not in") for p in typo) and any("values.schema.json" in p for p in typo)


def test_chart_versions_of_the_data():
    assert upstream.chart_version("kueue") == "0.19.2"
    assert upstream.chart_version("gpu-operator") == "v26.7.0"  # Chart.yaml has a placeholder; SOURCE.txt the tag
    assert upstream.chart_version("cert-manager") == "v1.21.1"


# --- custom resources ---------------------------------------------------------------------------------


def test_crds_are_indexed():
    for group, kind, version in [
        ("kueue.x-k8s.io", "ClusterQueue", "v1beta2"),
        ("kueue.x-k8s.io", "ClusterQueue", "v1beta1"),
        ("kueue.x-k8s.io", "Workload", "v1beta2"),
        ("trainer.kubeflow.org", "ClusterTrainingRuntime", "v1alpha1"),
        ("jobset.x-k8s.io", "JobSet", "v1alpha2"),
        ("nvidia.com", "ClusterPolicy", "v1"),
        ("monitoring.coreos.com", "PrometheusRule", "v1"),
        ("keda.sh", "ScaledObject", "v1alpha1"),
        ("cert-manager.io", "ClusterIssuer", "v1"),
    ]:
        assert upstream.crd_schema(group, kind, version)["type"] == "object"
    with pytest.raises(KeyError):
        upstream.crd_schema("kueue.x-k8s.io", "ClusterQueue", "v1")


def test_cluster_queue_field_names_are_checked_per_version():
    v1beta1_name = cluster_queue(cohort="infratech")
    errors = upstream.validate_custom_object(v1beta1_name)
    assert errors == ["spec: Additional properties are not allowed ('cohort' was unexpected)"]
    assert upstream.validate_custom_object(cluster_queue(cohortName="infratech")) == []
    # and the other way round: cohortName is no v1beta1 field
    assert upstream.validate_custom_object(cluster_queue(api="kueue.x-k8s.io/v1beta1", cohort="infratech")) == []
    assert upstream.validate_custom_object(cluster_queue(api="kueue.x-k8s.io/v1beta1", cohortName="x")) != []


def test_int_or_string_quantities():
    for quota in (4, "4", "500m", "1Gi"):
        assert upstream.validate_custom_object(cluster_queue(quota=quota)) == [], quota
    for quota in (4.5, "four", True):
        errors = upstream.validate_custom_object(cluster_queue(quota=quota))
        assert len(errors) == 1 and errors[0].startswith("spec.resourceGroups[0].flavors[0].resources[0].nominalQuota"), (quota, errors)


def test_enums_required_fields_and_unknown_objects():
    assert upstream.validate_custom_object(cluster_queue(queueingStrategy="FIFO")) != []  # enum: StrictFIFO, BestEffortFIFO
    assert upstream.validate_custom_object(cluster_queue(queueingStrategy="BestEffortFIFO")) == []
    lq = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue", "metadata": {"name": "a", "namespace": "t"}, "spec": {}}
    assert upstream.validate_custom_object({**lq, "spec": {"clusterQueue": "team-a"}}) == []
    missing = cluster_queue()
    del missing["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"]
    assert upstream.validate_custom_object(missing) == [
        "spec.resourceGroups[0].flavors[0].resources[0]: 'nominalQuota' is a required property"
    ]
    assert upstream.validate_custom_object({**lq, "kind": "LocalQueues"})[0].startswith("no CRD for LocalQueues")
    assert upstream.validate_custom_object({**lq, "apiVersion": "kueue.x-k8s.io/v1"})[0].startswith("no CRD")
    assert upstream.validate_custom_object({**lq, "spec": {"clusterQueue": "a"}, "extra": 1}) != []  # top level too
    assert upstream.validate_custom_object({**lq, "metadata": "a"}) != []


def test_preserve_unknown_fields_and_free_objects():
    # a free map (additionalProperties schema) takes any key; a field of a declared object does not
    flavor = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ResourceFlavor",
        "metadata": {"name": "l4"},
        "spec": {"nodeLabels": {"infratech.io/gpu-model": "l4"}, "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]},
    }
    assert upstream.validate_custom_object(flavor) == []
    flavor["spec"]["tolerations"][0]["efect"] = "NoSchedule"
    assert upstream.validate_custom_object(flavor) == [
        "spec.tolerations[0]: Additional properties are not allowed ('efect' was unexpected)"
    ]
    converted = upstream.to_json_schema(
        {"type": "object", "properties": {"a": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"b": {"type": "string"}}}, "n": {"type": "string", "nullable": True}}}
    )
    assert converted["additionalProperties"] is False
    assert "additionalProperties" not in converted["properties"]["a"]
    assert converted["properties"]["n"]["type"] == ["string", "null"]


# --- core objects -------------------------------------------------------------------------------------


def test_kubernetes_validate_versions():
    assert upstream.kubernetes_validate_version("1.34") == "1.34.0"
    assert upstream.kubernetes_validate_version("v1.34.2") == "1.34.0"
    assert upstream.kubernetes_validate_version("1.99") == upstream.kubernetes_validate_version("1.99.1")  # its newest
    assert upstream.kubernetes_validate_version("1.1").startswith("1.")  # its oldest


def test_namespace_with_unknown_field_is_rejected():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"a": "b"}}}
    assert upstream.validate_core_object(ns, "1.34") == []
    errors = upstream.validate_core_object({**ns, "spek": {}}, "1.34")
    assert len(errors) == 1 and "'spek' was unexpected" in errors[0]
    errors = upstream.validate_core_object({**ns, "metadata": {"name": "a", "label": {}}}, "1.34")
    assert len(errors) == 1 and errors[0].startswith("metadata:") and "'label' was unexpected" in errors[0]
    assert "Couldn't find schema" in upstream.validate_core_object({**ns, "kind": "Namespaces"}, "1.34")[0]


def test_network_policy_is_accepted_and_checked():
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "team-a"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
            "egress": [
                {
                    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": "dns-tcp", "protocol": "TCP"}],
                }
            ],
        },
    }
    assert upstream.validate_core_object(policy, "1.34") == []
    policy["spec"]["egress"][0]["ports"][0]["port"] = [53]
    assert upstream.validate_core_object(policy, "1.34") != []


def test_core_and_custom_api_versions():
    for api in ("v1", "apps/v1", "batch/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "admissionregistration.k8s.io/v1"):
        assert upstream.is_core_api_version(api), api
    for api in ("kueue.x-k8s.io/v1beta2", "jobset.x-k8s.io/v1alpha2", "monitoring.coreos.com/v1", "keda.sh/v1alpha1"):
        assert not upstream.is_core_api_version(api), api


# --- recorded resources -------------------------------------------------------------------------------


def _resource(type_, inputs, custom=True):
    return Resource(urn=f"urn:{type_}", type=type_, name="x", parent=None, custom=custom, provider=None,
                    dependencies=[], inputs=inputs, secret_outputs=[], protect=False)


def test_placeholders_are_removed_and_noted():
    res = _resource(
        "kubernetes:core/v1:Secret",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": COMPUTED}, "stringData": SECRET,
         "data": {"a": "YQ=="}},
    )
    notes: list[str] = []
    obj = upstream.object_from_resource(res, notes)
    assert obj == {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "YQ=="}}
    assert notes == ["kubernetes:core/v1:Secret x: metadata.namespace = (computed)", "kubernetes:core/v1:Secret x: stringData = [secret]"]
    stripped, notes = upstream.strip_placeholders({"a": [1, COMPUTED, {"b": SECRET}]})
    assert stripped == {"a": [1, {}]} and notes == ["a[1] = (computed)", "a[2].b = [secret]"]  # paths as recorded
    # Helm values keep the key (checked against the defaults), not the unknown value
    values, notes = upstream.strip_placeholders({"secret": {"accessKey": COMPUTED, "acessKey": SECRET}}, keep_keys=True)
    assert values == {"secret": {"accessKey": None, "acessKey": None}} and len(notes) == 2
    assert upstream.chart_value_problems("csi-s3", values) == ["secret.acessKey: not in the chart's default values"]
    # a required leaf that was only a placeholder fails visibly, and the note says why
    cq, notes = upstream.strip_placeholders(cluster_queue(quota=COMPUTED))
    assert notes == ["spec.resourceGroups[0].flavors[0].resources[0].nominalQuota = (computed)"]
    assert upstream.validate_custom_object(cq) == [
        "spec.resourceGroups[0].flavors[0].resources[0]: 'nominalQuota' is a required property"
    ]


def test_only_whole_kubernetes_objects_are_converted():
    release = _resource("kubernetes:helm.sh/v3:Release", {"chart": "keda", "version": "2.20.2", "values": {}})
    patch = _resource("kubernetes:core/v1:NamespacePatch", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
    provider = _resource("pulumi:providers:kubernetes", {"kubeconfig": SECRET})
    other = _resource("ovh:CloudProject/kube:Kube", {"version": "1.34"})
    assert all(upstream.object_from_resource(r) is None for r in (release, patch, provider, other))


PROGRAM = '''
import pulumi, pulumi_kubernetes as k8s
p = k8s.Provider("k8s", kubeconfig="unused")
o = pulumi.ResourceOptions(provider=p)
ns = k8s.core.v1.Namespace("ns", metadata={"name": "team-a", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}, opts=o)
k8s.core.v1.Secret("s", metadata={"name": "s", "namespace": ns.metadata.name}, type="Opaque",
                   string_data={"password": pulumi.Output.secret("x")}, opts=o)
k8s.networking.v1.NetworkPolicy("np", metadata={"name": "deny", "namespace": "team-a"},
                                spec={"podSelector": {}, "policyTypes": ["Ingress"]}, opts=o)
k8s.apiextensions.CustomResource("cq", api_version="kueue.x-k8s.io/v1beta2", kind="ClusterQueue", metadata={"name": "team-a"},
                                 spec={"cohortName": "infratech", "resourceGroups": [{"coveredResources": ["nvidia.com/gpu"],
                                       "flavors": [{"name": "l4", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 4}]}]}]}, opts=o)
k8s.helm.v3.Release("keda", chart="keda", version="2.20.2", repository_opts={"repo": "https://kedacore.github.io/charts"},
                    values={"prometheus": {"metricServer": {"enabled": True}}}, opts=o)
'''


def test_recorded_pulumi_kubernetes_resources_become_valid_manifests(tmp_path):
    """What the plan records for pulumi_kubernetes resources is the manifest itself."""
    (tmp_path / "Pulumi.yaml").write_text("name: k8s-shapes\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(textwrap.dedent(PROGRAM))
    rec = record(find_project(tmp_path), "dev")
    notes: list[str] = []
    objects = {r.type: upstream.object_from_resource(r, notes) for r in rec.resources}
    assert objects["kubernetes:core/v1:Namespace"] == {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    assert notes == ["kubernetes:core/v1:Secret s: stringData = [secret]"]
    for type_ in ("kubernetes:core/v1:Namespace", "kubernetes:core/v1:Secret", "kubernetes:networking.k8s.io/v1:NetworkPolicy"):
        assert upstream.validate_core_object(objects[type_], upstream.kubernetes_version(rec)) == [], type_
    assert upstream.validate_custom_object(objects["kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue"]) == []
    assert objects["kubernetes:helm.sh/v3:Release"] is None
    release = rec.one("kubernetes:helm.sh/v3:Release").inputs
    assert upstream.chart_value_problems("keda", release["values"]) == []
    assert upstream.kubernetes_version(rec) == upstream.DEFAULT_KUBERNETES_VERSION
