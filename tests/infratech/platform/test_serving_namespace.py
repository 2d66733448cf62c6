"""The serving namespace: the object-store Secret the serving init step reads (the read-only
key), the right of every team's members to deploy llm-serve there (and nothing else), its
network policies, and the Ingress that routes only vLLM's key-checked ``/v1`` paths."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "charts"))
from chart_harness import CHARTS_DIR, rendered  # noqa: E402


SERVING_SCENARIOS = {"01-gateway-values.yaml", "03-minimal-values.yaml"}  # served in `serving`


def _in_serving(plan, type_):
    return [r for r in plan.by_type(type_) if (r.inputs.get("metadata") or {}).get("namespace") == "serving"]


def test_the_serving_namespace_has_an_object_store_secret_as_team_namespaces_do(default_plan):
    [secret] = _in_serving(default_plan, "kubernetes:core/v1:Secret")
    team = next(r for r in default_plan.by_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["namespace"] == "pretraining")
    assert secret.inputs["metadata"]["name"] == team.inputs["metadata"]["name"] == "object-store"
    assert secret.inputs["stringData"] == "[secret]", "built from Pulumi secrets, never plain"


def test_every_teams_groups_may_deploy_what_the_serving_chart_renders(default_plan, project):
    [binding] = _in_serving(default_plan, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    groups = {s["name"] for s in binding.inputs["subjects"]}
    members = {s["name"] for r in default_plan.by_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
               if r.inputs["metadata"]["name"] == "team-member" for s in r.inputs["subjects"]}
    assert members and groups == members, "whoever is a member of a team may deploy in serving"
    [role] = _in_serving(default_plan, "kubernetes:rbac.authorization.k8s.io/v1:Role")
    allowed = {(group, res) for rule in role.inputs["rules"] if "create" in rule["verbs"]
               for group in rule["apiGroups"] for res in rule["resources"]}
    plural = {"Deployment": ("apps", "deployments"), "Service": ("", "services"), "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
              "ScaledObject": ("keda.sh", "scaledobjects"), "ServiceMonitor": ("monitoring.coreos.com", "servicemonitors")}
    scenarios = sorted((CHARTS_DIR / "llm-serve" / "ci").glob("*.yaml"))
    assert {s.name for s in scenarios} - SERVING_SCENARIOS == {"02-team-namespace-values.yaml"}, "say where a new scenario is served"
    for scenario in scenarios:
        if scenario.name in SERVING_SCENARIOS:
            for obj in rendered("llm-serve", scenario, namespace="serving"):
                assert plural[obj["kind"]] in allowed, f"{scenario.name}: a team member could not create {obj['kind']}"
    assert ("", "secrets") not in allowed and ("rbac.authorization.k8s.io", "roles") not in allowed
    # no chart needs these, and a member's NetworkPolicy would open what the platform's default-deny closes
    assert ("", "configmaps") not in allowed and ("networking.k8s.io", "networkpolicies") not in allowed


def test_serving_is_default_deny_reached_from_the_ingress_controller_only(default_plan, variant):
    from netpol_eval import reachable

    policies = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in _in_serving(default_plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ingress_from = [peer for spec in policies.values() for rule in spec.get("ingress") or [] for peer in rule.get("from") or [None]]
    names = [p and p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") for p in ingress_from]
    assert sorted(names) == ["ingress-nginx", "monitoring"], "no rule without peers, no pod selector, nothing else"
    assert not reachable(default_plan, "serving", "169.254.169.254", 443)
    assert not reachable(default_plan, "serving", "100.64.0.1", 443)
    other = variant("ovh-gra11", lambda c: c.setdefault("infratech:platform", {}).update(ingress_namespace="traefik"))
    names = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in _in_serving(other, "kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    (rule,) = names["allow-ingress-controller"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}}]


def _ingress_routes(ingress: dict, host: str, path: str) -> bool:
    """Kubernetes Ingress path matching (kubernetes.io/docs/concepts/services-networking/ingress,
    "Examples" table): ``Prefix`` matches element-wise on ``/``-split paths (``/v1`` matches
    ``/v1`` and ``/v1/models``, never ``/v1x``); ``Exact`` the whole path."""
    for rule in ingress["spec"]["rules"]:
        if rule.get("host") not in (None, host):
            continue
        for p in rule["http"]["paths"]:
            want = [e for e in p["path"].split("/") if e]
            got = [e for e in path.split("?")[0].split("/") if e]
            if p["pathType"] == "Exact" and p["path"] == path.split("?")[0]:
                return True
            if p["pathType"] == "Prefix" and got[: len(want)] == want:
                return True
    return False


# vLLM 0.32's routes its API key does not guard (it checks /v1, /v2 and /inference only; its
# `--api-key` help says so, docs/serving.md "Security notes"): none may be routed
UNCHECKED_VLLM_PATHS = ["/invocations", "/tokenize", "/detokenize", "/pooling", "/classify", "/score", "/rerank",
                        "/health", "/ping", "/version", "/metrics", "/load", "/is_sleeping", "/collective_rpc", "/", "/v1x"]


def test_the_ingress_routes_only_the_key_checked_v1_paths(variant):
    rec = variant("ovh-gra11", lambda c: c.setdefault("infratech:platform", {}).update(serving_host="llm.example.org"))
    (ingress,) = [r.inputs for r in _in_serving(rec, "kubernetes:networking.k8s.io/v1:Ingress")]
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/models", "/v1"):
        assert _ingress_routes(ingress, "llm.example.org", path), path
    for path in UNCHECKED_VLLM_PATHS:
        assert not _ingress_routes(ingress, "llm.example.org", path), f"{path} would answer without the key"
    assert all(p["pathType"] in ("Prefix", "Exact") for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]), \
        "ImplementationSpecific leaves matching to the controller (regexes in ingress-nginx)"
