"""Bare metal: nothing created, the hosts of the stack file become the inventory the node roles read."""

from __future__ import annotations

import pytest
import yaml

from infratech.cli import main
from infratech.cli.inventory import build
from infratech.cli.plan import policy_verdicts, record
from infratech.cli.plan.runtime import SECRET

STACK = "baremetal-onprem"


@pytest.fixture(scope="module")
def metal(project):
    return record(project, STACK)


def test_nothing_is_created_but_the_join_token(metal):
    custom = [r.type for r in metal.resources if r.custom]
    assert custom == ["random:index/randomPassword:RandomPassword"]
    assert metal.outputs["join_token"] == SECRET
    assert metal.outputs["kubeconfig"] is None, "written by the bootstrap phase"


def test_inventory_holds_every_host_with_its_address_role_and_jump_host(metal):
    hosts = metal.outputs["inventory"]["hosts"]
    assert [(h["name"], h["address"], h["rke2_role"]) for h in hosts[:3]] == [
        ("cp-1", "10.20.0.11", "server"), ("cp-2", "10.20.0.12", "server"), ("cp-3", "10.20.0.13", "server")]
    assert [h["address"] for h in hosts if h["pool"] == "h100"] == ["10.20.1.21", "10.20.1.22", "10.20.1.23", "10.20.1.24"]
    assert all(h["jump_host"] == "ops@bastion.dc2.example.org" and h["user"] == "ubuntu" for h in hosts)
    assert metal.outputs["inventory"]["server_url"] == "https://10.20.0.11:9345"


def test_pools_are_as_large_as_their_host_lists(metal):
    pools = {p["name"]: p for p in metal.outputs["pools"]}
    assert pools["system"]["nodes"] == {"min": 3, "desired": 3, "max": 3}
    assert pools["h100"]["nodes"]["desired"] == 4 and pools["h100"]["gpus_per_node"] == 8


def test_ansible_groups_from_the_plan(metal):
    inv = build(metal.outputs, STACK)["all"]
    children = inv["children"]
    assert list(children["rke2_servers"]["hosts"]) == ["cp-1", "cp-2", "cp-3"]
    assert list(children["rke2_agents"]["hosts"]) == ["h100-1", "h100-2", "h100-3", "h100-4"]
    h100 = children["pool_h100"]
    assert h100["vars"]["gpu_health_expected_gpu_count"] == 8
    assert "nvidia.com/gpu=present:NoSchedule" in h100["vars"]["rke2_node_taints"]
    assert h100["hosts"]["h100-1"]["ansible_ssh_common_args"] == "-o ProxyJump=ops@bastion.dc2.example.org"
    assert inv["vars"]["rke2_node_server_url"] == "https://10.20.0.11:9345"
    assert inv["vars"]["nvidia_container_toolkit_runtime"] == "rke2"
    # the first server starts the cluster (no server URL, not its own address); the others join it
    system = children["pool_system"]["hosts"]
    assert system["cp-1"]["rke2_node_server_url"] == ""
    assert "rke2_node_server_url" not in system["cp-2"] and "rke2_node_server_url" not in system["cp-3"]
    assert "rke2_node_server_url" not in h100["hosts"]["h100-1"]


def test_outscale_inventory_offline_uses_the_planned_names(project):
    inv = build(record(project, "outscale-cloudgouv-a100").outputs, "outscale-cloudgouv-a100")["all"]
    assert list(inv["children"]["rke2_servers"]["hosts"]) == ["llm-gouv-system-1"]
    assert inv["children"]["pool_system"]["hosts"] == {"llm-gouv-system-1": {
        "ansible_host": "llm-gouv-system-1", "ansible_user": "outscale", "rke2_node_role": "server", "base_firewall_profile": "rke2_server",
        "rke2_node_server_url": ""}}
    assert list(inv["children"]["pool_a100"]["hosts"]) == ["llm-gouv-a100-1", "llm-gouv-a100-2"]
    assert "rke2_node_server_url" not in inv["vars"], "unknown before up: never a placeholder URL"


def test_inventory_cli_never_writes_the_token(project, capsys):
    assert main(["inventory", STACK]) == 0
    text = capsys.readouterr().out
    assert "RKE2_TOKEN" in text and "pool_h100" in text
    assert yaml.safe_load(text)["all"]["children"]["rke2_servers"]["hosts"]


def test_policies_pass_and_the_country_is_checked(project, metal):
    assert [v.rule.id for v in policy_verdicts(project, metal) if v.status == "FAIL"] == []
    assert metal.outputs["country"] == "FR"
