"""An existing cluster: nothing created, the same handle as the managed providers give."""

from __future__ import annotations

import pytest

from infratech.config import StackConfigError
from infratech.cli.plan import record
from infratech import offline
from infratech.cli.plan.runtime import SECRET
from infratech.cli.stacks import Project

STACK = "existing-onprem"


@pytest.fixture(scope="module")
def onprem(project):
    return record(project, STACK)


def test_nothing_is_created_in_any_cloud(onprem):
    component = onprem.one("infratech:providers:ExistingCluster")
    assert not component.custom and not component.children
    cloud = [r for r in onprem.resources if r.custom and r.package not in ("kubernetes", "random") and not r.type.startswith("pulumi:providers:kubernetes")]
    assert cloud == [], "only the platform's Kubernetes objects (and a generated password) are declared"


def test_pools_come_from_the_stack_with_platform_labels_and_gpu_taints(onprem):
    pools = {p["name"]: p for p in onprem.outputs["pools"]}
    assert set(pools) == {"system", "h100", "l40s"}
    h100 = pools["h100"]
    assert (h100["gpu_model"], h100["gpus_per_node"]) == ("h100-80gb", 8)
    assert h100["nodes"] == {"min": 4, "desired": 4, "max": 4}, "nodes: N is a fixed-size pool"
    assert h100["labels"]["infratech.io/gpu-model"] == "h100-80gb"
    assert h100["labels"]["infratech.io/gpu-count"] == "8"
    assert h100["labels"]["site"] == "paris-dc1"
    assert h100["taints"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "present"}]
    assert pools["system"]["gpus_per_node"] == 0 and pools["system"]["taints"] == []


def test_handle_carries_what_is_preinstalled_and_where(onprem):
    out = onprem.outputs
    assert out["provider"] == "existing" and out["region"] == "paris-dc1" and out["country"] == "FR"
    assert out["kube_context"] == "onprem-admin"
    assert out["kubeconfig"] == SECRET
    assert out["preinstalled"] == {"driver": True, "toolkit": True, "gpu_operator": False, "distribution": "rke2"}


def test_object_store_credentials_are_secrets(onprem):
    store = onprem.outputs["object_store"]
    assert store["endpoint"] == "https://s3.dc1.example.org"
    assert store["buckets"] == {"checkpoints": "llm-checkpoints", "datasets": "llm-datasets"}
    assert store["access_key_id"] == SECRET and store["secret_access_key"] == SECRET


def test_costs_of_an_existing_cluster_are_unknown_never_zero(onprem):
    costs = onprem.outputs["costs"]
    assert all(p["eur_per_hour_per_node"] is None for p in costs["pools"])
    assert costs["budget"]["state"] == "none" and costs["budget"]["eur_per_month"] is None


def _stack_copy(project, tmp_path, text: str) -> Project:
    stack_dir = tmp_path / "stacks"
    stack_dir.mkdir()
    (stack_dir / f"Pulumi.{STACK}.yaml").write_text(text, encoding="utf-8")
    return Project(root=project.root, name=project.name, stack_dir=stack_dir, main=project.main)


def test_a_missing_kubeconfig_file_is_named_when_deploying(project, tmp_path, monkeypatch):
    """Offline, the file is not read (a plan runs anywhere); for real, a missing file is a clear error."""
    text = project.stack_file(STACK).read_text(encoding="utf-8")
    copy = _stack_copy(project, tmp_path, text.replace("~/.kube/onprem-rke2.yaml", str(tmp_path / "missing.yaml")))
    assert record(copy, STACK).outputs["provider"] == "existing"
    monkeypatch.setattr(offline, "is_offline", lambda: False)
    with pytest.raises(StackConfigError) as info:
        record(copy, STACK)
    assert info.value.problems[0].path == "existing.kubeconfig_path"
    assert "no such file" in info.value.problems[0].message


def test_a_kubeconfig_in_plain_text_is_refused(project, tmp_path):
    text = project.stack_file(STACK).read_text(encoding="utf-8")
    text = text.replace("    kubeconfig_path: ~/.kube/onprem-rke2.yaml\n", "")
    text += "  infratech:kubeconfig: 'apiVersion: v1'\n"
    with pytest.raises(StackConfigError) as info:
        record(_stack_copy(project, tmp_path, text), STACK)
    (problem,) = info.value.problems
    assert problem.path == "kubeconfig" and "must be a Pulumi secret" in problem.message
    assert "apiVersion" not in info.value.render(), "a credential is never echoed back"
