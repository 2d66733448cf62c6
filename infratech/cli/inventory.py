"""An Ansible inventory from a stack's outputs: ``infratech inventory STACK``.

The outputs read are ``provider``, ``region``, ``pools``, ``preinstalled`` and ``inventory``. Offline, they come from
the plan recording (``infratech.cli.plan.record``); after ``pulumi up`` the same keys come from the
deployed stack's outputs, so both give the same inventory shape.

``inventory`` (written by the self-built providers, ``outscale`` and ``baremetal``) holds::

    {"server_url": "https://10.0.0.10:9345", "api_endpoint": "...",
     "hosts": [{"name": "gpu-1", "address": "10.0.0.21", "pool": "h100", "rke2_role": "agent",
                "user": "root", "jump_host": "ops@bastion"}, ...]}

Offline, Outscale VMs have their planned names and no address yet: the name stands in for it.

Groups: ``pool_<name>`` per pool (its labels, taints and GPU count as variables), ``gpu_nodes``
(pools with GPUs), ``rke2_servers`` and ``rke2_agents`` (hosts by RKE2 role). The first server
(the first of ``rke2_servers``, where the kubeconfig is fetched) has no server URL: it starts the
cluster that the others join. Managed clusters
(OVHcloud MKS, Scaleway Kapsule) have no host to list: the groups are written empty with their
variables, for machines the operator adds.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..config.common import SELF_BUILT_PROVIDERS
from ..policy.model import COMPUTED

HEALTH_TAINT = "infratech.io/unhealthy=true:NoSchedule"
TOKEN_LOOKUP = "{{ lookup('ansible.builtin.env', 'RKE2_TOKEN') }}"


class InventoryError(ValueError):
    """The stack's outputs cannot make an inventory; the message says which key is wrong."""


def group_name(pool: str) -> str:
    return "pool_" + re.sub(r"[^A-Za-z0-9_]", "_", pool)


def _pool_vars(pool: dict) -> dict[str, Any]:
    taints = [f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in pool.get("taints") or []]
    gpus = int(pool.get("gpus_per_node") or 0)
    out: dict[str, Any] = {
        "infratech_pool": pool["name"],
        "infratech_pool_role": pool.get("role"),
        "rke2_node_labels": [f"{k}={v}" for k, v in sorted((pool.get("labels") or {}).items())],
    }
    if gpus:
        out.update({
            "infratech_gpu_model": pool.get("gpu_model"),
            "gpu_health_expected_gpu_count": gpus,
            # GPU nodes register with the health check's taint; gpu_health removes it once the node passes
            "rke2_node_taints": taints + [HEALTH_TAINT],
            "base_firewall_profile": "rke2_agent",
        })
    else:
        out["rke2_node_taints"] = taints
        out["gpu_health_enabled"] = False
    return out


def build(outputs: dict, stack: str) -> dict:
    """The inventory as a mapping (YAML inventory format)."""
    pools = outputs.get("pools")
    if not isinstance(pools, list):
        raise InventoryError(f"stack {stack}: output 'pools' is missing or not a list")
    extra = outputs.get("inventory") or {}
    if not isinstance(extra, dict):
        raise InventoryError(f"stack {stack}: output 'inventory' must be a mapping, got {type(extra).__name__}")
    children: dict[str, dict] = {}
    gpu_groups = []
    for pool in pools:
        if not isinstance(pool, dict) or "name" not in pool:
            raise InventoryError(f"stack {stack}: every entry of 'pools' needs a name")
        name = group_name(pool["name"])
        children[name] = {"hosts": {}, "vars": _pool_vars(pool)}
        if int(pool.get("gpus_per_node") or 0) > 0:
            gpu_groups.append(name)
    servers: dict[str, None] = {}
    agents: dict[str, None] = {}
    for host in extra.get("hosts") or []:
        try:
            hname, pool = host["name"], host["pool"]
        except (KeyError, TypeError):
            raise InventoryError(f"stack {stack}: every entry of inventory.hosts needs a name and a pool") from None
        group = group_name(pool)
        if group not in children:
            raise InventoryError(f"stack {stack}: host {hname} names pool {pool!r}, which the stack does not have")
        address = host.get("address")
        # offline, a VM's address is known only after `up`: the planned name stands in for it
        hostvars = {"ansible_host": hname if address in (None, COMPUTED) else address, "ansible_user": host.get("user", "root")}
        jump = host.get("jump_host")
        if isinstance(jump, str) and jump != COMPUTED:
            hostvars["ansible_ssh_common_args"] = f"-o ProxyJump={jump}"
        role = host.get("rke2_role", "agent")
        if role not in ("server", "agent"):
            raise InventoryError(f"stack {stack}: host {hname}: rke2_role must be server or agent, got {role!r}")
        if role == "server":
            hostvars.update({"rke2_node_role": "server", "base_firewall_profile": "rke2_server"})
            if not servers:
                # the first server starts the cluster: no server URL; the others and the agents join
                # through it (docs.rke2.io/install/ha: "Server nodes other than the first ... need a URL")
                hostvars["rke2_node_server_url"] = ""
            servers[hname] = None
        else:
            agents[hname] = None
        children[group]["hosts"][hname] = hostvars
    children["gpu_nodes"] = {"children": {g: {} for g in gpu_groups}}
    children["rke2_servers"] = {"hosts": servers}
    children["rke2_agents"] = {"hosts": agents}
    all_vars: dict[str, Any] = {
        "infratech_stack": stack,
        "infratech_provider": outputs.get("provider"),
        "infratech_region": outputs.get("region"),
        "rke2_node_token": TOKEN_LOOKUP,
    }
    if extra.get("server_url") not in (None, COMPUTED):
        all_vars["rke2_node_server_url"] = extra["server_url"]
    distribution = (outputs.get("preinstalled") or {}).get("distribution")
    if outputs.get("provider") in SELF_BUILT_PROVIDERS or extra.get("hosts") or distribution == "rke2":
        # RKE2 runs its own containerd from a template: the nvidia runtime goes there (rke2_node),
        # not in /etc/containerd
        all_vars["nvidia_container_toolkit_runtime"] = "rke2"
    return {"all": {"vars": all_vars, "children": children}}


def render(outputs: dict, stack: str) -> str:
    header = (f"# Ansible inventory of stack {stack}, written by `infratech inventory {stack}`.\n"
              "# The join token is read from the RKE2_TOKEN environment variable, never written here.\n")
    return header + yaml.safe_dump(build(outputs, stack), sort_keys=False, default_flow_style=False)


def from_plan(project, stack: str) -> str:
    """Offline: the outputs of the plan recording (no Pulumi CLI, cloud or credentials)."""
    from .plan import record

    return render(record(project, stack).outputs, stack)
