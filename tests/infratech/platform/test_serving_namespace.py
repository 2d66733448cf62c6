"""The serving namespace: the object-store Secret the serving init step reads, and the right of
every team's members to deploy llm-serve there (and nothing else)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "charts"))
from chart_harness import CHARTS_DIR, rendered  # noqa: E402


def _in_serving(plan, type_):
    return [r for r in plan.by_type(type_) if (r.inputs.get("metadata") or {}).get("namespace") == "serving"]


def test_the_serving_namespace_has_the_object_store_secret_as_team_namespaces_do(default_plan):
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
    plural = {"Deployment": ("apps", "deployments"), "Service": ("", "services"), "ConfigMap": ("", "configmaps"),
              "NetworkPolicy": ("networking.k8s.io", "networkpolicies"), "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
              "ScaledObject": ("keda.sh", "scaledobjects"), "ServiceMonitor": ("monitoring.coreos.com", "servicemonitors")}
    for scenario in sorted((CHARTS_DIR / "llm-serve" / "ci").glob("*.yaml")):
        for obj in rendered("llm-serve", scenario, namespace="serving"):
            assert plural[obj["kind"]] in allowed, f"{scenario.name}: a team member could not create {obj['kind']}"
    assert ("", "secrets") not in allowed and ("rbac.authorization.k8s.io", "roles") not in allowed
