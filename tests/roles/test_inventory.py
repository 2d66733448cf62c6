"""``infratech inventory STACK``: an Ansible inventory from a stack's outputs (offline: the plan)."""

from __future__ import annotations

import subprocess

import pytest
import roles_harness as harness
import yaml

from infratech.cli import inventory

OUTPUTS = {
    "provider": "baremetal", "region": "paris-dc1",
    "pools": [
        {"name": "system", "role": "system", "gpus_per_node": 0, "labels": {"infratech.io/pool": "system"}, "taints": []},
        {"name": "h100-sxm", "role": "training", "gpu_model": "h100-sxm", "gpus_per_node": 8,
         "labels": {"infratech.io/pool": "h100-sxm"}, "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
    ],
    "inventory": {"server_url": "https://10.0.0.10:9345", "hosts": [
        {"name": "cp-1", "address": "10.0.0.10", "pool": "system", "rke2_role": "server"},
        {"name": "gpu-1", "address": "10.0.0.21", "pool": "h100-sxm"},
    ]},
}


def test_groups_per_pool_and_role_with_the_variables_the_roles_need():
    inv = inventory.build(OUTPUTS, "onprem")["all"]
    ch = inv["children"]
    assert ch["pool_h100_sxm"]["hosts"]["gpu-1"]["ansible_host"] == "10.0.0.21"
    gpu_vars = ch["pool_h100_sxm"]["vars"]
    assert gpu_vars["gpu_health_expected_gpu_count"] == 8
    assert gpu_vars["rke2_node_taints"] == ["nvidia.com/gpu=present:NoSchedule", "infratech.io/unhealthy=true:NoSchedule"]
    assert gpu_vars["rke2_node_labels"] == ["infratech.io/pool=h100-sxm"]
    assert ch["gpu_nodes"] == {"children": {"pool_h100_sxm": {}}}
    assert list(ch["rke2_servers"]["hosts"]) == ["cp-1"] and list(ch["rke2_agents"]["hosts"]) == ["gpu-1"]
    assert ch["pool_system"]["hosts"]["cp-1"]["rke2_node_role"] == "server"
    assert inv["vars"]["rke2_node_server_url"] == "https://10.0.0.10:9345"
    assert "RKE2_TOKEN" in inv["vars"]["rke2_node_token"]  # the token is never written


def test_bad_outputs_name_the_key():
    with pytest.raises(inventory.InventoryError, match="'pools'"):
        inventory.build({"provider": "x"}, "s")
    bad = {**OUTPUTS, "inventory": {"hosts": [{"name": "n", "pool": "nope"}]}}
    with pytest.raises(inventory.InventoryError, match="pool 'nope'"):
        inventory.build(bad, "s")


@pytest.mark.parametrize("stack", ["ovh-gra11", "scaleway-fr-par-2-h100"])
def test_every_shipped_stack_gives_an_inventory_ansible_reads(project, stack, tmp_path):
    text = inventory.from_plan(project, stack)
    data = yaml.safe_load(text)
    assert "gpu_nodes" in data["all"]["children"]
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    res = subprocess.run([str(harness.ANSIBLE_BIN / "ansible-inventory"), "-i", str(path), "--list"], check=False, stdin=subprocess.DEVNULL,
                         text=True, capture_output=True, env=harness.ansible_env(tmp_path / "f"))
    assert res.returncode == 0, res.stderr
    assert "[WARNING]" not in res.stderr or "Unable to parse" not in res.stderr


def test_an_existing_rke2_cluster_gets_the_rke2_runtime_and_a_managed_one_does_not(project):
    onprem = yaml.safe_load(inventory.from_plan(project, "existing-onprem"))["all"]
    assert onprem["vars"]["nvidia_container_toolkit_runtime"] == "rke2"
    assert onprem["children"]["pool_h100"]["vars"]["gpu_health_expected_gpu_count"] == 8
    managed = yaml.safe_load(inventory.from_plan(project, "ovh-gra11"))["all"]
    assert "nvidia_container_toolkit_runtime" not in managed["vars"]
