"""charts/llm-serve: the Service the gateway reaches (service-gateway.yaml), the autoscaler
(scaledobject-vllm.yaml), the ServiceMonitor, the disruption budget and the network policy, and
that they all point at the replicas."""

from __future__ import annotations

import pytest
from chart_harness import CHARTS_DIR, by_kind, one, render_error, rendered

CI = CHARTS_DIR / "llm-serve" / "ci"
GATEWAY = CI / "01-gateway-values.yaml"
TEAM = CI / "02-team-namespace-values.yaml"
MINIMAL = CI / "03-minimal-values.yaml"


def pod_labels(objects):
    return one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_in_the_serving_namespace_the_service_should_be_the_platforms_gateway(default_plan):
    from infratech.program.platform.serving import GATEWAY_PORT, GATEWAY_SERVICE

    objects = rendered("llm-serve", GATEWAY, namespace=default_plan.outputs["serving_namespace"])
    svc = one(objects, "Service")
    assert svc["metadata"]["name"] == GATEWAY_SERVICE
    assert svc["spec"]["ports"] == [{"name": "http", "port": GATEWAY_PORT, "targetPort": "http", "protocol": "TCP"}]
    assert selects(svc["spec"]["selector"], pod_labels(objects))


def test_elsewhere_the_service_should_take_the_release_name_unless_named():
    assert one(rendered("llm-serve", TEAM, namespace="applied"), "Service")["metadata"]["name"] == "job-x"
    assert one(rendered("llm-serve", MINIMAL, namespace="serving"), "Service")["metadata"]["name"] == "tiny-canary"


def test_autoscaler_should_scale_the_deployment_on_requests_waiting_for_this_model():
    objects = rendered("llm-serve", GATEWAY, namespace="serving")
    so = one(objects, "ScaledObject")["spec"]
    assert so["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": one(objects, "Deployment")["metadata"]["name"]}
    assert (so["minReplicaCount"], so["maxReplicaCount"]) == (1, 3)
    trigger = so["triggers"][0]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"] == {
        "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
        "query": 'sum(vllm:num_requests_waiting{namespace="serving", model_name="tiny"})',
        "threshold": "5",
    }


def test_service_monitor_should_scrape_metrics_of_the_api_port():
    objects = rendered("llm-serve", GATEWAY, namespace="serving")
    sm = one(objects, "ServiceMonitor")["spec"]
    svc = one(objects, "Service")
    assert selects(sm["selector"]["matchLabels"], svc["metadata"]["labels"])
    assert sm["namespaceSelector"] == {"matchNames": ["serving"]}
    assert sm["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    assert sm["endpoints"][0]["port"] in [p["name"] for p in svc["spec"]["ports"]]


def test_disruption_budget_and_network_policy_should_cover_the_replicas():
    objects = rendered("llm-serve", GATEWAY, namespace="serving")
    labels = pod_labels(objects)
    pdb = one(objects, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1 and selects(pdb["selector"]["matchLabels"], labels)
    assert by_kind(objects, "NetworkPolicy") == [], "in serving the platform's policies apply"
    objects = rendered("llm-serve", TEAM, namespace="applied")
    np = one(objects, "NetworkPolicy")["spec"]
    assert selects(np["podSelector"]["matchLabels"], pod_labels(objects))
    assert np["policyTypes"] == ["Ingress", "Egress"]
    egress_ports = sorted((p["port"], p["protocol"]) for rule in np["egress"] for p in rule["ports"])
    assert egress_ports == [(53, "TCP"), (53, "UDP"), (443, "TCP")]


def test_ingress_can_be_limited_to_given_peers():
    np = one(rendered("llm-serve", TEAM, namespace="applied"), "NetworkPolicy")["spec"]
    assert np["ingress"][0]["from"] == [{"podSelector": {}}]


def test_optional_objects_should_go_when_switched_off():
    kinds = {o["kind"] for o in rendered("llm-serve", MINIMAL, namespace="serving")}
    assert kinds == {"Deployment", "Service"}
    assert by_kind(rendered("llm-serve", TEAM, namespace="applied"), "ScaledObject") == []


@pytest.mark.parametrize(
    "sets,namespace,expected",
    [
        (["gpu.count=0"], "serving", "at '/gpu/count': minimum"),
        (["autoscaling.maxReplicas=two"], "serving", "at '/autoscaling/maxReplicas': got string, want integer"),
        (["vllm.extraArgs[0]=--max-num-seqs=4"], "serving", "additional properties 'extraArgs' not allowed"),
        (["profile=a100"], "serving", "at '/profile': value must be one of '', 'h100', 'l4', 'l40s'"),
        (["profile="], "serving", "profile: required, the serving profile"),
        (["apikey.secretName=x"], "serving", "additional properties 'apikey' not allowed"),
        (["model.uri="], "serving", "model.uri: required"),
        (["model.uri=/models/tiny"], "serving", 'model.uri "/models/tiny": must be an s3:// prefix'),
        (["model.servedName="], "serving", "model.servedName: required"),
        (["apiKey.secretName="], "serving", "apiKey.secretName: required"),
        (["vllm.tensorParallelSize=2"], "serving", "additional properties 'tensorParallelSize' not allowed"),
        (["forceUnpromoted=because"], "serving", 'forceUnpromoted "because": write out why'),
        (["autoscaling.minReplicas=4"], "serving", "autoscaling.minReplicas 4 is above autoscaling.maxReplicas 3"),
        (["serviceMonitor.enabled=false"], "serving", "autoscaling.enabled needs serviceMonitor.enabled"),
        (["service.port=80"], "serving", "service.port 80: the platform's Ingress sends /v1 to llm-gateway port 8000"),
        (["probes.modelLoadSeconds=5"], "serving", "probes.modelLoadSeconds 5 is shorter than probes.periodSeconds 10"),
        (["gate.force=true"], "serving", "additional properties 'gate' not allowed"),
        (["image.tag=latest"], "serving", "image.tag: never latest"),
    ],
)
def test_should_refuse_bad_values_naming_them(sets, namespace, expected):
    assert expected in render_error("llm-serve", GATEWAY, namespace=namespace, sets=sets)


def test_another_port_is_fine_outside_the_gateway():
    svc = one(rendered("llm-serve", TEAM, namespace="applied", sets=["service.port=80"]), "Service")
    assert svc["spec"]["ports"][0]["port"] == 80
