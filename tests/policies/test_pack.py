"""The CrossGuard pack loads with every rule, and its validations call the same code as the plan.

``PolicyPack`` serves the pack over gRPC and never returns, so the test replaces it with a
recorder (a test double for the Pulumi engine side only) and runs the pack's real ``__main__.py``.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pulumi_policy as pp
import pytest
import yaml

from infratech.cli import main
from infratech.policy import RULES
from infratech.policy.packconfig import pack_config, settings_from

PACK = Path(__file__).resolve().parents[2] / "policies" / "sovereignty"


class RecordedPack:
    def __init__(self, name, policies, **kwargs):
        self.name, self.policies, self.kwargs = name, policies, kwargs


@pytest.fixture(scope="module")
def pack():
    recorded = {}
    original = pp.PolicyPack
    pp.PolicyPack = lambda *a, **k: recorded.setdefault("pack", RecordedPack(*a, **k))
    try:
        runpy.run_path(str(PACK / "__main__.py"), run_name="__main__")
    finally:
        pp.PolicyPack = original
    return recorded["pack"]


def test_pack_files_are_a_python_policy_pack():
    project = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    requirements = (PACK / "requirements.txt").read_text()
    assert "pulumi-policy>=1.21,<2" in requirements and "-e ../.." in requirements


def test_pack_has_every_rule_with_its_level_and_scope(pack):
    assert pack.name == "infratech-sovereignty"
    by_name = {p.name: p for p in pack.policies}
    assert list(by_name) == [r.id for r in RULES]
    for rule in RULES:
        policy = by_name[rule.id]
        expected = pp.ResourceValidationPolicy if rule.scope == "resource" else pp.StackValidationPolicy
        assert isinstance(policy, expected), rule.id
        assert policy.enforcement_level.value == rule.default_level


def _resource_args(resource_type, props, config=None):
    return pp.ResourceValidationArgs(
        resource_type=resource_type, props=props, urn=f"urn:pulumi:s::p::{resource_type}::x", name="x",
        opts=pp.PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                      custom_timeouts=pp.PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[]),
        provider=None, config=config or {},
    )


def _run(policy, args):
    reported = []
    validate = policy.validate[0] if isinstance(policy.validate, list) else policy.validate
    validate(args, lambda message, urn=None: reported.append(message))
    return reported


def test_resource_policy_reports_what_the_plan_reports(pack):
    taint = {r.name: r for r in pack.policies}["gpu-pools-tainted"]
    untainted = {"flavorName": "h100-380", "template": {"metadata": {"labels": {}}, "spec": {"taints": []}}}
    (message,) = _run(taint, _resource_args("ovh:CloudProject/kubeNodePool:KubeNodePool", untainted))
    assert "nvidia.com/gpu NoSchedule taint" in message
    tainted = {**untainted, "template": {"metadata": {}, "spec": {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]}}}
    assert _run(taint, _resource_args("ovh:CloudProject/kubeNodePool:KubeNodePool", tainted)) == []


def test_stack_policy_reads_its_config(pack):
    location = {r.name: r for r in pack.policies}["data-location"]
    kube = pp.PolicyResource(
        resource_type="ovh:CloudProject/kube:Kube", props={"region": "DE1"}, urn="urn:k", name="mks",
        opts=None, provider=None, parent=None, dependencies=[], property_dependencies={},
    )
    france = pp.StackValidationArgs(resources=[kube], config={"area": "france"})
    assert any("not in France" in m for m in _run(location, france))
    eu = pp.StackValidationArgs(resources=[kube], config={"area": "eu"})
    assert _run(location, eu) == []


def test_stack_policy_ties_an_allow_list_to_its_cluster_through_the_engine_dependencies(pack):
    restricted = {r.name: r for r in pack.policies}["api-restricted"]

    def resource(type_, urn, props, deps=()):
        return pp.PolicyResource(resource_type=type_, props=props, urn=urn, name=urn, opts=None, provider=None, parent=None,
                                 dependencies=list(deps), property_dependencies={})

    kube = resource("ovh:CloudProject/kube:Kube", "urn:k", {"region": "GRA11"})
    allow = resource("ovh:CloudProject/kubeIpRestrictions:KubeIpRestrictions", "urn:a", {"ips": ["198.51.100.0/24"]}, [kube])
    assert _run(restricted, pp.StackValidationArgs(resources=[kube, allow], config={})) == []
    loose = resource("ovh:CloudProject/kubeIpRestrictions:KubeIpRestrictions", "urn:a", {"ips": ["198.51.100.0/24"]})
    (message,) = _run(restricted, pp.StackValidationArgs(resources=[kube, loose], config={}))
    assert "no allow-list of its own" in message


def test_rules_the_pack_cannot_see_say_so(pack):
    secrets = {r.name: r for r in pack.policies}["secrets-as-secrets"]
    from pulumi_policy.policy import _NotApplicableError  # what args.not_applicable raises to the engine

    with pytest.raises(_NotApplicableError) as info:
        _run(secrets, _resource_args("kubernetes:core/v1:Secret", {"stringData": {"k": "v"}}))
    assert "infratech plan checks this rule" in info.value.reason


def test_policy_config_command_gives_the_pack_the_stack_settings(capsys):
    assert main(["policy-config", "ovh-gra11"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert set(config) == {r.id for r in RULES}
    assert config["budget"]["enforcementLevel"] == "advisory" and config["data-location"]["enforcementLevel"] == "mandatory"
    assert settings_from(config["data-location"]).area == "france"
    assert pack_config(settings_from({"area": "eu"}))["data-location"]["area"] == "eu"
