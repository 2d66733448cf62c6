"""The bootstrap phase of ``infratech up`` on booted hosts: the inventory made from a stack's outputs
(the ``baremetal-onprem`` stack file with its addresses replaced by three systemd-nspawn hosts: one
RKE2 server, two H100 agents) converges ``playbooks/site.yml`` through the product's Runner, the
token in the environment only; the kubeconfig is fetched from the server and rewritten.

The first bootstrap is SIGKILLed once the server has RKE2 installed; the rerun converges; a third
run changes nothing. The Automation API's stack, NVIDIA's packages and RKE2's release are TEST
DOUBLES (tests/cluster/cluster_harness.py says which and why).
"""

from __future__ import annotations

import cluster_harness as cluster
import pytest
import roles_harness as harness
import yaml

from infratech.cli.phases import KUBECONFIG_KEY

SERVER, AGENTS = "cp-1", ["h100-1", "h100-2"]


def _pool(site, name):
    host = next(h for h in site.outputs["inventory"]["hosts"] if h["name"] == name)
    return next(p for p in site.outputs["pools"] if p["name"] == host["pool"])


def _remote_config(site, name) -> dict:
    return yaml.safe_load(site.fleet.ssh(name, "cat /etc/rancher/rke2/config.yaml").stdout)


def test_a_bootstrap_killed_after_the_first_rke2_install_converges_when_rerun(site, killed, converged):
    assert killed.killed, f"the run was never killed:\n{killed.output[-3000:]}"
    assert killed.error == "phase bootstrap failed: ansible-playbook playbooks/site.yml exited -9", killed.error
    # killed half-way: the server had RKE2, the agents had not been reached by the rke2_node role
    assert "PLAY RECAP" not in killed.output
    assert cluster.RKE2_INSTALL_TASK in killed.log
    assert killed.hosts_with_rke2 == {SERVER}
    assert converged.error is None, f"{converged.error}\n{converged.output[-5000:]}"
    assert converged.ran == ["bootstrap"]
    recap = converged.recaps()[0]
    assert set(recap) == set(cluster.HOSTS)
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in recap.values()), recap
    assert KUBECONFIG_KEY in site.stack.config


def test_a_rerun_reports_no_change(site, rerun):
    assert rerun.error is None, f"{rerun.error}\n{rerun.output[-5000:]}"
    site_recap, fetch_recap = rerun.recaps()
    assert set(site_recap) == set(cluster.HOSTS)
    unchanged = {host: counts["changed"] for host, counts in site_recap.items()}
    assert unchanged == {host: 0 for host in cluster.HOSTS}, harness.PlayResult(0, rerun.output, 0).changed_tasks()
    # the fetch writes into a fresh temporary directory of this machine on every run; the server is untouched
    assert set(fetch_recap) == {SERVER} and fetch_recap[SERVER]["failed"] == 0


@pytest.mark.parametrize("name", [SERVER, *AGENTS])
def test_each_host_has_the_rke2_config_of_its_pool(site, converged, name):
    config = _remote_config(site, name)
    pool = _pool(site, name)
    server_url = site.outputs["inventory"]["server_url"]
    assert server_url == f"https://{site.fleet.hosts[SERVER].ip}:9345"
    if name == SERVER:
        assert "server" not in config, "the first server bootstraps the cluster: no server URL"
        assert config["write-kubeconfig-mode"] == "0600"
    else:
        assert config["server"] == server_url
    assert config["node-label"] == [f"{k}={v}" for k, v in sorted(pool["labels"].items())]
    assert config["node-label"], f"pool {pool['name']} has no labels in the stack's outputs"
    taints = [f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in pool["taints"]]
    if pool["gpus_per_node"]:
        # GPU nodes register with the health check's taint as well
        assert config["node-taint"] == [*taints, "infratech.io/unhealthy=true:NoSchedule"]
        assert "nvidia.com/gpu=present:NoSchedule" in config["node-taint"]
    else:
        assert config.get("node-taint", []) == taints


@pytest.mark.parametrize("name", [SERVER, *AGENTS])
def test_the_token_file_is_0600_and_holds_the_stack_token(site, converged, name):
    out = site.fleet.ssh(name, "stat -c '%a %U %G' /etc/rancher/rke2/config.yaml /etc/rancher/rke2").stdout.split("\n")
    assert out[0] == "600 root root" and out[1] == "700 root root", out
    assert _remote_config(site, name)["token"] == site.token


@pytest.mark.parametrize("name", [SERVER, *AGENTS])
def test_rke2_is_enabled_and_running(site, converged, name):
    service = "rke2-server" if name == SERVER else "rke2-agent"
    res = site.fleet.ssh(name, f"systemctl is-enabled {service}; systemctl is-active {service}", check=False)
    assert res.stdout.split() == ["enabled", "active"], res.stdout + res.stderr
    other = "rke2-agent" if name == SERVER else "rke2-server"
    assert site.fleet.ssh(name, f"systemctl is-active {other}", check=False).stdout.strip() != "active"


def test_the_kubeconfig_is_fetched_from_the_server_and_rewritten_to_the_api_endpoint(site, converged):
    stored = yaml.safe_load(site.stack.config[KUBECONFIG_KEY])
    on_server = yaml.safe_load(site.fleet.ssh(SERVER, "cat /etc/rancher/rke2/rke2.yaml").stdout)
    endpoint = site.outputs["inventory"]["api_endpoint"]
    assert endpoint and endpoint != site.fleet.hosts[SERVER].ip
    assert on_server["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert stored["clusters"][0]["cluster"]["server"] == f"https://{endpoint}:6443"
    # nothing else changed: the credentials are the server's
    on_server["clusters"][0]["cluster"]["server"] = stored["clusters"][0]["cluster"]["server"]
    assert stored == on_server
    mode = site.fleet.ssh(SERVER, "stat -c %a /etc/rancher/rke2/rke2.yaml").stdout.strip()
    assert mode == "600"


def test_the_token_is_in_no_log_output_or_command_line(site, killed, converged, rerun):
    token = site.token
    assert len(site.runs) >= 3
    for run in site.runs:
        assert run.log and run.output, "ansible-playbook wrote no log or output"
        assert token not in run.log, "the token is in the Ansible log"
        assert token not in run.output, "the token is in ansible-playbook's output"
        assert all(token not in line for line in run.echo)
        assert run.argv and all(token not in " ".join(argv) for argv in run.argv), "the token is on a command line"
        assert run.cmdlines and all(token not in cmd for cmd in run.cmdlines), "the token was in a process's argv"
        # the token went where it should: the process environment, not a file of the controller
        assert all("RKE2_TOKEN" not in " ".join(argv) for argv in run.argv)
    for name in cluster.HOSTS:
        # the hosts' logs (journal, /var/log) and every file but the RKE2 config
        res = site.fleet.ssh(name, f"journalctl --no-pager -o cat | grep -c -F '{token}'; "
                                   f"grep -rlF '{token}' /var/log /etc /var/lib/infratech /root /tmp 2>/dev/null; true")
        lines = res.stdout.split()
        assert lines[0] == "0", f"the token is in {name}'s journal"
        assert lines[1:] == ["/etc/rancher/rke2/config.yaml"], f"{name}: the token is in {lines[1:]}"
