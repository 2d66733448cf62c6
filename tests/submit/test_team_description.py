"""The team description in the plan of every shipped stack: published in each team namespace as the
ConfigMap infratech-team (the very document the stack exports as team_descriptions), complete,
readable by the team's groups and by nothing broader, and holding no key or token."""

from __future__ import annotations

import re

import pytest
import yaml

from infratech.cli.plan import record
from infratech.cli.stacks import Project
from infratech.config.common import SELF_BUILT_PROVIDERS
from infratech.team_description import CONFIGMAP, DATA_KEY, READER, SCHEMA

# what a key, a token or a masked secret looks like, wherever it sits in the document
SECRET_LOOKS = [
    re.compile(r"\[secret\]"),  # a secret Output, as the plan records it
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # a JWT (ServiceAccount or OIDC token)
    re.compile(r"\b(AKIA|SCW)[A-Z0-9]{16,}\b"),  # access key ids (AWS-style, Scaleway)
]
SECRET_KEYS = re.compile(r"(secret|password|passwd|token|access_?key|private_?key|kubeconfig|client-key|client_key)", re.I)


def platform_phase(project, stack, tmp_dir):
    """The project as the platform phase sees ``stack``: a self-built cluster (outscale, baremetal)
    declares its platform, hence the descriptions, once its bootstrap has written the kubeconfig
    into the stack's config (a secret). Other stacks as shipped."""
    data = yaml.safe_load(project.stack_file(stack).read_text(encoding="utf-8"))
    if data["config"].get("infratech:provider") not in SELF_BUILT_PROVIDERS:
        return project
    data["config"]["infratech:kubeconfig"] = {"secure": "v1:written-by-the-bootstrap-phase"}
    (tmp_dir / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return Project(root=project.root, name=project.name, stack_dir=tmp_dir, main=project.main)


@pytest.fixture(scope="module")
def plans(project, tmp_path_factory):
    """Every shipped stack recorded once for this module, with its platform."""
    tmp_dir = tmp_path_factory.mktemp("platform-phase")
    return {stack: record(platform_phase(project, stack, tmp_dir), stack) for stack in project.stacks()}


def _resources(rec, kind, name, namespace):
    return [r for r in rec.resources if r.type == kind and r.inputs.get("metadata", {}).get("name") == name and r.inputs["metadata"].get("namespace") == namespace]


def _keys(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}", k
            yield from _keys(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _keys(v, f"{path}[{i}]")


def test_every_shipped_stack_should_be_checked(project, plans):
    assert len(plans) >= 5 and "ovh-gra11" in plans
    assert all("team_descriptions" in rec.outputs for rec in plans.values())


def test_each_team_namespace_should_hold_the_description_the_stack_exports(plans):
    for stack, rec in plans.items():
        exported = rec.outputs["team_descriptions"]
        assert sorted(exported) == sorted(rec.outputs["teams"]), stack
        for team, description in exported.items():
            (cm,) = _resources(rec, "kubernetes:core/v1:ConfigMap", CONFIGMAP, description["namespace"])
            assert yaml.safe_load(cm.inputs["data"][DATA_KEY]) == description, f"{stack}/{team}"
            assert cm.inputs["immutable"] is True


def test_the_description_should_be_complete(plans):
    for stack, rec in plans.items():
        out = rec.outputs
        # the pools Kueue hands out: Slurm's pools are Slurm's alone (docs/slurm.md)
        pools = [p for p in out["pools"] if p["gpu_model"] and p["role"] != "slurm"]
        for team, d in out["team_descriptions"].items():
            where = f"{stack}/{team}"
            assert d["schema"] == SCHEMA and d["stack"] == stack and d["team"] == team, where
            assert d["namespace"] == out["queues"][team]["namespace"], where
            assert d["local_queue"] == out["queues"][team]["local_queue"], where
            assert d["training_runtime"] == out["training_runtime"] and d["serving_namespace"] == out["serving_namespace"], where
            assert [c["name"] for c in d["priority_classes"]] == out["priority_classes"], where
            assert [(p["pool"], p["flavour"], p["gpus_per_node"], p["max_nodes"]) for p in d["gpu_pools"]] == [
                (p["name"], p["gpu_model"], p["gpus_per_node"], p["nodes"]["max"]) for p in pools
            ], where
            for model in {p["gpu_model"] for p in pools}:
                flavour = d["gpu_flavours"][model]
                assert flavour["node_labels"] and flavour["tolerations"], where
            assert d["groups"], where
            store = out.get("object_store")
            if store is not None:
                assert d["object_store"]["endpoint"] == store["endpoint"], where
                assert d["object_store"]["buckets"] == store["buckets"] and all(d["object_store"]["buckets"].values()), where


def test_the_description_should_hold_no_key_or_token(plans):
    for stack, rec in plans.items():
        for team, d in rec.outputs["team_descriptions"].items():
            (cm,) = _resources(rec, "kubernetes:core/v1:ConfigMap", CONFIGMAP, d["namespace"])
            text = cm.inputs["data"][DATA_KEY]
            for pattern in SECRET_LOOKS:
                assert not pattern.search(text), f"{stack}/{team}: {pattern.pattern}"
            bad = [path for path, key in _keys(d) if SECRET_KEYS.search(key)]
            assert bad == [], f"{stack}/{team}: {bad}"


def test_the_scan_should_catch_a_key_put_in_the_description():
    """The scan above is not vacuous: a description carrying the store's keys fails it."""
    leaked = {"object_store": {"access_key_id": "[secret]"}}
    assert any(SECRET_KEYS.search(k) for _, k in _keys(leaked))
    assert SECRET_LOOKS[0].search(yaml.safe_dump(leaked))


def test_only_the_teams_groups_should_read_it(plans):
    for stack, rec in plans.items():
        for team, d in rec.outputs["team_descriptions"].items():
            (role,) = _resources(rec, "kubernetes:rbac.authorization.k8s.io/v1:Role", READER, d["namespace"])
            assert role.inputs["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [CONFIGMAP], "verbs": ["get"]}]
            (binding,) = _resources(rec, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", READER, d["namespace"])
            assert [s["name"] for s in binding.inputs["subjects"]] == d["groups"], f"{stack}/{team}"
            assert {s["kind"] for s in binding.inputs["subjects"]} == {"Group"}
