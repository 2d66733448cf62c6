"""Every role on real booted Debian 12 hosts (systemd-nspawn), driven by ansible-playbook over SSH.

gpu-a: each role converges, then converges again with changed=0; host state is asserted with
testinfra; the containerd configuration survives a simulated GPU-operator edit; the whole
gpu_node.yml play is then a no-op; the health check fails an unhealthy node and keeps its taint.
gpu-b: a --check run on the fresh host, then a run killed half-way that converges when re-run.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
import roles_harness as harness

ROOT = harness.ROOT
ROLE_PLAY = Path(__file__).resolve().parent / "playbooks/role.yml"
GPU_NODE = ROOT / "playbooks/gpu_node.yml"
ROLES = ["base", "nvidia_driver", "nvidia_container_toolkit", "nvme_scratch", "rke2_node", "gpu_health"]
PINNED_DRIVER = "580.95.05-1"


@pytest.fixture(scope="session")
def converged_roles() -> set:
    """The roles converged on gpu-a so far in this run."""
    return set()


@pytest.fixture(scope="module")
def a(play, prepared, converged_roles):
    """gpu-a with every role converged: the converge tests do it first in a full run; a state test
    run alone (``-k test_rke2_state``) converges what is missing here, so it passes alone too."""
    for role in ROLES:
        if role not in converged_roles:
            res = play(ROLE_PLAY, {"converge_role": role, "converge_hosts": "gpu-a"})
            assert res.rc == 0 and _counts(res, "gpu-a")["failed"] == 0, res.output[-5000:]
            converged_roles.add(role)
    return harness.infra_host(prepared, "gpu-a")


def _recordings(prepared, smi="nvidia-smi-q-x.healthy-8xH200.xml", dcgm="dcgmi-diag-r1.pass.json"):
    """Put these recorded outputs behind the nvidia-smi and dcgmi test doubles of gpu-a."""
    fixtures = Path(__file__).resolve().parent / "fixtures"
    for src, dest in ((smi, "nvidia-smi.xml"), (dcgm, "dcgmi-diag.json")):
        subprocess.run(["scp", *prepared.ssh_args(), str(fixtures / src),
                        f"root@{prepared.hosts['gpu-a'].ip}:/etc/infratech-test-double/{dest}"], check=True)


def _counts(res, host):
    recap = res.recap()
    assert host in recap, f"no recap for {host}:\n{res.output[-3000:]}"
    return recap[host]


@pytest.mark.parametrize("role", ROLES)
def test_role_converges_then_reruns_with_no_change(play, prepared, converged_roles, role):
    first = play(ROLE_PLAY, {"converge_role": role, "converge_hosts": "gpu-a"})
    assert first.rc == 0, first.output[-5000:]
    assert _counts(first, "gpu-a")["failed"] == 0
    converged_roles.add(role)
    second = play(ROLE_PLAY, {"converge_role": role, "converge_hosts": "gpu-a"})
    assert second.rc == 0, second.output[-5000:]
    assert _counts(second, "gpu-a")["changed"] == 0, f"{role} not idempotent, changed: {second.changed_tasks()}"


def test_base_state(a):
    assert a.package("chrony").is_installed
    assert a.service("chrony").is_enabled and a.service("chrony").is_running
    sshd = a.file("/etc/ssh/sshd_config.d/10-infratech.conf")
    assert sshd.mode == 0o600 and sshd.user == "root"
    assert "PasswordAuthentication no" in sshd.content_string
    assert "PermitRootLogin prohibit-password" in sshd.content_string
    effective = a.run("sshd -T").stdout
    assert "passwordauthentication no" in effective and "kbdinteractiveauthentication no" in effective
    assert a.service("nftables").is_enabled
    rules = a.run("nft list table inet infratech_filter")
    assert rules.rc == 0, rules.stderr
    assert "policy drop" in rules.stdout and "tcp dport" in rules.stdout and "10250" in rules.stdout
    assert "8472" in rules.stdout  # canal VXLAN for the rke2_agent profile
    assert a.file("/etc/apt/apt.conf.d/20auto-upgrades").contains('Unattended-Upgrade "1"')
    assert a.file("/etc/apt/apt.conf.d/52infratech-unattended-upgrades").contains('"nvidia-"')
    assert a.service("apt-daily-upgrade.timer").is_enabled
    assert a.file("/etc/sysctl.d/90-infratech-base.conf").contains("kernel.numa_balancing = 0")
    # network sysctls are per network namespace, so writable (and applied) inside the container
    assert a.sysctl("net.ipv4.ip_forward") == 1
    assert a.file("/etc/systemd/journald.conf.d/90-infratech.conf").contains("SystemMaxUse=2G")


def test_firewall_trusts_the_node_network_and_a_restart_keeps_other_tables(a, prepared):
    subnet = ".".join(prepared.hosts["gpu-a"].ip.split(".")[:3]) + ".0/24"
    assert subnet in a.run("nft list table inet infratech_filter").stdout
    # kube-proxy and the CNI keep their own tables: restarting nftables must not flush them
    assert a.run("nft add table ip infratech_test_foreign").rc == 0
    try:
        assert a.run("systemctl restart nftables").rc == 0
        assert a.run("nft list table ip infratech_test_foreign").rc == 0, "systemctl restart nftables flushed the ruleset"
        assert a.run("nft list table inet infratech_filter").rc == 0
    finally:
        a.run("nft delete table ip infratech_test_foreign")


def _node_network_rules(listing: str) -> tuple[list[str], list[str]]:
    """The rules of our input chain that accept from the node network's set, and the other rules."""
    rules = [line.strip() for line in listing.splitlines() if line.strip().endswith("accept")]
    return [r for r in rules if "@node_networks_v4" in r], [r for r in rules if "@node_networks_v4" not in r]


def test_firewall_opens_the_ports_of_the_chosen_cni_to_the_node_network_only(play, prepared, a):
    # what kube-proxy and the CNI load beside our table; a re-run that changes our rules must keep it
    foreign = ("nft add table ip kube_proxy_standin && nft add chain ip kube_proxy_standin services && "
               "nft add rule ip kube_proxy_standin services ip daddr 10.43.0.10 counter")
    assert a.run(foreign).rc == 0
    # Ports per CNI: RKE2 docs install/requirements "Inbound Network Rules"; Cilium docs
    # operations/system_requirements "Firewall Rules"
    wanted = {"calico": (["179", "5473", "4789"], ["8472"]),
              "cilium": (["4240", "4244", "8472"], ["179", "4789"]),
              "canal": (["8472", "9099"], ["179", "4240"])}
    try:
        for cni, (present, absent) in wanted.items():
            res = play(ROLE_PLAY, {"converge_role": "base", "converge_hosts": "gpu-a", "base_firewall_cni": cni})
            assert res.rc == 0, res.output[-3000:]
            kept = a.run("nft list table ip kube_proxy_standin")
            assert kept.rc == 0 and "10.43.0.10" in kept.stdout, f"re-running base with cni={cni} removed kube-proxy's table"
            listing = a.run("nft list table inet infratech_filter").stdout
            subnet = ".".join(prepared.hosts["gpu-a"].ip.split(".")[:3]) + ".0/24"
            assert subnet in listing.split("chain input")[0], listing  # the set of node networks
            node_rules, other_rules = _node_network_rules(listing)
            for port in present:
                assert any(port in r for r in node_rules), f"{cni}: {port} not opened to the node network:\n{listing}"
            for port in present + absent:
                assert not any(f" {port}" in r or f"{port}," in r for r in other_rules), f"{cni}: {port} open to other sources:\n{listing}"
            for port in absent:
                assert not any(port in r for r in node_rules), f"{cni}: {port} opened:\n{listing}"
            if cni == "calico":  # IP-in-IP is an IP protocol, not a port
                assert any("l4proto" in r and ("ipencap" in r or " 4 " in r) for r in node_rules), listing
    finally:
        a.run("nft delete table ip kube_proxy_standin")


def test_unattended_upgrades_take_security_updates_only(a):
    # apt merges Origins-Pattern across files: Debian's 50unattended-upgrades adds the point releases
    patterns = [line for line in a.run("apt-config dump Unattended-Upgrade::Origins-Pattern").stdout.splitlines()
                if line.startswith("Unattended-Upgrade::Origins-Pattern::")]
    assert patterns, "no origins configured"
    assert all("-security" in line for line in patterns), patterns


def test_nvidia_driver_state(a):
    pkg = a.package("nvidia-open")
    assert pkg.is_installed and pkg.version == PINNED_DRIVER, "the pin must refuse the newer 590 branch"
    assert a.package("nvidia-kernel-open-dkms").version == PINNED_DRIVER
    held = a.run("apt-mark showhold").stdout.split()
    assert {"nvidia-open", "nvidia-kernel-open-dkms", "nvidia-persistenced"} <= set(held)
    policy = a.run("apt-cache policy nvidia-open").stdout
    assert f"Candidate: {PINNED_DRIVER}" in policy and "590.44.01-1" in policy
    assert a.file("/etc/apt/sources.list.d/nvidia-cuda.sources").contains("Signed-By: /etc/apt/keyrings/nvidia-cuda.asc")
    assert a.file("/etc/apt/keyrings/nvidia-cuda.asc").mode == 0o644
    assert a.file("/etc/modprobe.d/blacklist-nouveau.conf").contains("blacklist nouveau")
    assert a.service("nvidia-persistenced").is_enabled and a.service("nvidia-persistenced").is_running
    assert not a.package("nvidia-fabricmanager").is_installed  # no NVSwitch on this host


def test_the_whole_driver_chain_is_on_the_pinned_branch(a):
    # libraries outside the old name pattern, each requiring its siblings at exactly this version
    for name in ("libglx-nvidia0", "libegl-nvidia0", "libgl1-nvidia-glvnd-glx", "libnvcuvid1", "libcuda1",
                 "nvidia-driver-libs", "nvidia-driver", "nvidia-kernel-support"):
        assert a.package(name).version == PINNED_DRIVER, name
        assert f"Candidate: {PINNED_DRIVER}" in a.run(f"apt-cache policy {name}").stdout, name
    # nothing is left that apt would upgrade to the newer branch
    assert "590.44.01-1" not in a.run("apt-get -s -o Debug::NoLocking=1 dist-upgrade").stdout


def test_debian_contrib_is_enabled_for_the_driver_dependencies(a):
    assert a.package("nvidia-support").is_installed  # Debian ships it in contrib only
    assert "contrib" in a.run("apt-get indextargets --format '$(COMPONENT)' 'Identifier: Packages'").stdout.split()
    sources = a.file("/etc/apt/sources.list").content_string
    assert all("contrib" in line for line in sources.splitlines() if line.startswith("deb ")), sources


def test_kernel_headers_are_installed_and_dkms_built_the_module(a):
    import standins

    kver = a.run("uname -r").stdout.strip()
    assert a.package(f"linux-headers-{kver}").is_installed
    assert a.package(standins.HEADERS_METAPACKAGE).is_installed  # a later kernel gets its headers too
    module = a.file(standins.DKMS_MODULE.format(kver=kver))
    assert module.exists and PINNED_DRIVER.split("-")[0] in module.content_string


def test_persistence_daemon_runs_with_persistence_mode_on(a):
    exec_start = a.run("systemctl show -p ExecStart nvidia-persistenced").stdout
    assert "nvidia-persistenced" in exec_start and "--no-persistence-mode" not in exec_start, exec_start
    assert a.file("/run/infratech-test-double/persistence-mode").content_string.strip() == "Enabled"
    assert "<persistence_mode>Disabled" not in a.run("nvidia-smi -q -x").stdout


def test_a_repository_already_listed_by_cuda_keyring_is_used_not_listed_twice(play, prepared, a):
    # what NVIDIA's cuda-keyring package writes: the same repository, signed by its own key file
    ours = a.file("/etc/apt/sources.list.d/nvidia-cuda.sources").content_string
    url = next(line.split()[1] for line in ours.splitlines() if line.startswith("URIs:"))
    foreign = "/etc/apt/sources.list.d/cuda-debian12-x86_64.list"
    setup = (f"cp /etc/apt/keyrings/nvidia-cuda.asc /usr/share/keyrings/cuda-archive-keyring.asc && "
             f"echo 'deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.asc] {url} /' > {foreign}")
    assert a.run(setup).rc == 0
    try:
        res = play(ROLE_PLAY, {"converge_role": "nvidia_driver", "converge_hosts": "gpu-a"})
        assert res.rc == 0, res.output[-3000:]
        update = a.run("apt-get update")
        assert update.rc == 0 and "Conflicting values" not in update.stderr, update.stderr
        assert not a.file("/etc/apt/sources.list.d/nvidia-cuda.sources").exists
    finally:
        a.run(f"rm -f {foreign} /usr/share/keyrings/cuda-archive-keyring.asc")
        restore = play(ROLE_PLAY, {"converge_role": "nvidia_driver", "converge_hosts": "gpu-a"})
        assert restore.rc == 0, restore.output[-3000:]
    assert a.file("/etc/apt/sources.list.d/nvidia-cuda.sources").exists


def test_toolkit_state_and_real_containerd_reads_the_runtime(a):
    for name in ("nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container1"):
        assert a.package(name).version == "1.18.0-1"
    assert "nvidia-container-toolkit" in a.run("apt-mark showhold").stdout.split()
    # Debian 12 ships containerd 1.6, which replaces a plugin's whole section with the last file that
    # mentions it: the runtime is a marked block of config.toml there, not a drop-in.
    config = a.file("/etc/containerd/config.toml").content_string
    assert "# BEGIN INFRATECH nvidia_container_toolkit" in config and "/usr/bin/nvidia-container-runtime" in config
    assert not a.file("/etc/containerd/conf.d/50-infratech-nvidia.toml").exists
    dump = a.run("containerd config dump")
    assert dump.rc == 0, dump.stderr
    assert "runtimes.nvidia]" in dump.stdout and "/usr/bin/nvidia-container-runtime" in dump.stdout
    assert 'bin_dir = "/usr/lib/cni"' in dump.stdout, "Debian's own CRI settings must survive"
    assert a.service("containerd").is_running
    assert a.file("/etc/cdi/nvidia.yaml").contains("kind: nvidia.com/gpu")


def test_toolkit_drop_in_for_containerd_2_has_the_version_of_config_toml(play, prepared, a):
    # Debian 12 has containerd 1.6; a TEST DOUBLE answering `containerd --version` as containerd 2
    # takes the role down its drop-in path, on a scratch configuration (the real containerd is not touched)
    scratch = "/etc/infratech-test-containerd"
    setup = (f"mkdir -p {scratch} && printf 'version = 2\\n' > {scratch}/config.toml && printf '%s\\n' '#!/bin/sh' "
             "'# TEST DOUBLE: containerd 2 version string' "
             "'echo containerd github.com/containerd/containerd/v2 v2.1.4 0' > /usr/local/bin/containerd "
             "&& chmod 755 /usr/local/bin/containerd")
    assert a.run(setup).rc == 0
    try:
        res = play(ROLE_PLAY, {"converge_role": "nvidia_container_toolkit", "converge_hosts": "gpu-a",
                               "nvidia_container_toolkit_containerd_config": f"{scratch}/config.toml",
                               "nvidia_container_toolkit_containerd_dropin_dir": f"{scratch}/conf.d",
                               "nvidia_container_toolkit_restart_containerd": False})
        assert res.rc == 0, res.output[-3000:]
        dropin = a.file(f"{scratch}/conf.d/50-infratech-nvidia.toml").content_string
        # a version 3 drop-in would stop containerd 2 from migrating config.toml (containerd PR 12891)
        assert "\nversion = 2\n" in dropin, dropin
        assert 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]' in dropin
        assert f'imports = ["{scratch}/conf.d/*.toml"]' in a.file(f"{scratch}/config.toml").content_string
    finally:
        a.run(f"rm -rf {scratch} /usr/local/bin/containerd")


def test_a_changed_version_or_a_lost_hold_is_put_right_by_the_next_run(play, prepared, a):
    # apt is skipped only when dpkg reports every package installed, at the wanted version, held
    toolkit = {"converge_role": "nvidia_container_toolkit", "converge_hosts": "gpu-a"}
    older = play(ROLE_PLAY, {**toolkit, "nvidia_container_toolkit_version": "1.17.8-1"})
    assert older.rc == 0, older.output[-4000:]
    assert any("installed at the chosen version" in t for t in older.changed_tasks()), older.changed_tasks()
    assert a.package("nvidia-container-toolkit").version == "1.17.8-1"
    back = play(ROLE_PLAY, toolkit)
    assert back.rc == 0, back.output[-4000:]
    assert a.package("nvidia-container-toolkit").version == "1.18.0-1"
    assert "nvidia-container-toolkit" in a.run("apt-mark showhold").stdout.split()
    assert prepared.ssh("gpu-a", "apt-mark unhold nvidia-open").returncode == 0
    rehold = play(ROLE_PLAY, {"converge_role": "nvidia_driver", "converge_hosts": "gpu-a"})
    assert rehold.rc == 0, rehold.output[-4000:]
    assert rehold.changed_tasks() == ["nvidia_driver : Ensure the driver packages are held at the pinned version"]
    assert "nvidia-open" in a.run("apt-mark showhold").stdout.split()


def test_rke2_state(a, rke2_supervisor):
    assert "v1.33.5+rke2r1" in a.run("/usr/local/bin/rke2 --version").stdout
    assert a.service("rke2-agent").is_enabled and a.service("rke2-agent").is_running
    cfg = a.file("/etc/rancher/rke2/config.yaml")
    assert cfg.mode == 0o600
    assert "profile: cis" in cfg.content_string and "infratech.io/unhealthy=true:NoSchedule" in cfg.content_string
    assert f":{rke2_supervisor.port}" in cfg.content_string.split("server: https://")[1].splitlines()[0]
    tmpl = a.file("/var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.tmpl").content_string
    assert tmpl.startswith('{{ template "base" . }}')
    assert "BinaryName = \"/usr/bin/nvidia-container-runtime\"" in tmpl
    assert a.file("/var/lib/rancher/rke2/agent/images/rke2-images.linux-amd64.tar.zst").exists
    assert a.file("/etc/sysctl.d/60-rke2-cis.conf").contains("kernel.panic_on_oops = 1")


def test_an_agent_that_cannot_reach_its_server_fails_naming_it_within_the_bound(play, prepared, a):
    # RKE2's unit waits forever for a joining node to reach its server (the stand-in rke2 too): without
    # the bound the restart below would hang the play until the harness's own timeout
    unreachable = "https://192.0.2.10:9345"  # TEST-NET-1 (RFC 5737): nothing answers there
    try:
        res = play(ROLE_PLAY, {"converge_role": "rke2_node", "converge_hosts": "gpu-a",
                               "rke2_node_server_url": unreachable, "rke2_node_server_wait_timeout": 10}, timeout=300)
        assert res.rc != 0, res.output[-3000:]
        assert f"could not reach its RKE2 server {unreachable} (rke2_node_server_url) within 10 s" in res.output, res.output[-3000:]
        assert a.service("rke2-agent").is_running  # the running agent was not restarted into the hang
    finally:
        restore = play(ROLE_PLAY, {"converge_role": "rke2_node", "converge_hosts": "gpu-a"})
        assert restore.rc == 0, restore.output[-3000:]


def test_rke2_renders_the_containerd_template_of_its_containerd_version(a):
    # RKE2 v1.33 (containerd 2) reads config-v3.toml.tmpl, and config.toml.tmpl as a version 2 file
    rendered = a.file("/var/lib/rancher/rke2/agent/etc/containerd/config.toml").content_string
    assert rendered.startswith("version = 3\n"), rendered[:200]
    assert "config-v3.toml.tmpl" in rendered and "runtimes.nvidia]" in rendered
    old = a.file("/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl")
    assert not old.exists or "INFRATECH rke2_node" not in old.content_string


def test_rke2_started_with_the_cis_kernel_parameters_in_effect(a):
    # the stand-in rke2 refuses to start otherwise, as RKE2 does; the values are the kernel's (here
    # the sysctl test double's record, since a container cannot write vm.* and kernel.*)
    values = a.run("sysctl -n kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom").stdout.split()
    assert values == ["10", "1", "1", "0"], values
    assert a.service("rke2-agent").is_running
    assert "invalid kernel parameter" not in a.run("journalctl -u rke2-agent --no-pager -q").stdout


def test_rke2_service_lets_pods_lock_memory(a):
    assert a.run("systemctl show -p LimitMEMLOCK rke2-agent").stdout.strip() == "LimitMEMLOCK=infinity"


def test_dcgm_is_installed_and_its_host_engine_runs(a):
    assert a.package("datacenter-gpu-manager-4-cuda13").is_installed
    assert a.service("nvidia-dcgm").is_enabled and a.service("nvidia-dcgm").is_running
    assert a.file("/usr/bin/dcgmi").exists and not a.file("/usr/local/bin/dcgmi").exists


def test_gpu_health_report_and_taint_removed(a, report_dir):
    report = json.loads(a.file("/var/lib/infratech/gpu_health.json").content_string)
    assert report["healthy"] is True and len(report["nvidia_smi"]["gpus"]) == 8
    assert a.file("/var/lib/infratech-test-double/taints").content_string.strip() == ""
    assert "infratech.io/unhealthy-" in a.file("/var/log/kubectl-test-double.log").content_string
    controller = json.loads((report_dir / "gpu-a.json").read_text())
    assert controller["host"] == "gpu-a" and controller["healthy"] is True


def test_rke2_refuses_an_artifact_whose_checksum_does_not_match(play, prepared, tmp_path):
    import standins

    bad = standins.build_rke2_artifacts(tmp_path / "bad", corrupt=True)
    res = play(ROLE_PLAY, {"converge_role": "rke2_node", "converge_hosts": "gpu-a", "rke2_node_artifacts_dir": str(bad)})
    assert res.rc != 0
    assert "checksum mismatch for rke2.linux-amd64.tar.gz" in res.output
    assert "Ensure RKE2 is installed at" not in res.output.split("checksum mismatch")[1]
    restore = play(ROLE_PLAY, {"converge_role": "rke2_node", "converge_hosts": "gpu-a"})
    assert restore.rc == 0, restore.output[-3000:]


def test_nvme_scratch_leaves_a_node_without_nvme_alone(a):
    assert not a.file("/etc/systemd/system/scratch.mount").exists


def test_containerd_config_survives_a_gpu_operator_edit(a, play, prepared):
    # What the GPU operator's toolkit does: a runtime added to config.toml and its own drop-in;
    # and, with CONTAINERD_CONFIG pointed at RKE2's template, a runtime appended to the template.
    edit = r"""
cat >> /etc/containerd/config.toml <<'X'

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia-cdi]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia-cdi.options]
    BinaryName = "/usr/local/nvidia/toolkit/nvidia-container-runtime.cdi"
X
mkdir -p /etc/containerd/conf.d
# NVIDIA's toolkit (>= 1.18) copies the existing runtimes into its own drop-in, then adds its own
cat > /etc/containerd/conf.d/99-nvidia.toml <<'X'
version = 2
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "/etc/cni/net.d"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
    BinaryName = "/usr/bin/nvidia-container-runtime"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia-cdi]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia-cdi.options]
    BinaryName = "/usr/local/nvidia/toolkit/nvidia-container-runtime.cdi"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia-legacy]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia-legacy.options]
    BinaryName = "/usr/local/nvidia/toolkit/nvidia-container-runtime.legacy"
X
grep -q '^imports' /etc/containerd/config.toml || sed -i '/^version/a imports = ["/etc/containerd/conf.d/*.toml"]' /etc/containerd/config.toml
cat >> /var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.tmpl <<'X'
# added by the GPU operator (simulated)
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."nvidia-cdi"]
  runtime_type = "io.containerd.runc.v2"
X
systemctl restart containerd
"""
    assert prepared.ssh("gpu-a", edit).returncode == 0
    for role in ("nvidia_container_toolkit", "rke2_node"):
        res = play(ROLE_PLAY, {"converge_role": role, "converge_hosts": "gpu-a"})
        assert res.rc == 0, res.output[-4000:]
        assert _counts(res, "gpu-a")["changed"] == 0, res.changed_tasks()
    config = a.file("/etc/containerd/config.toml").content_string
    assert "runtimes.nvidia-cdi]" in config and "# BEGIN INFRATECH nvidia_container_toolkit" in config
    assert a.file("/etc/containerd/conf.d/99-nvidia.toml").contains("nvidia-legacy")
    dump = a.run("containerd config dump").stdout
    for runtime in ("runtimes.nvidia]", "runtimes.nvidia-cdi]", "runtimes.nvidia-legacy]"):
        assert runtime in dump, f"{runtime} lost:\n{dump[-2000:]}"
    tmpl = a.file("/var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.tmpl").content_string
    assert '"nvidia-cdi"' in tmpl and "BEGIN INFRATECH rke2_node" in tmpl


def test_gpu_node_playbook_is_a_noop_once_converged(play, prepared, a):
    """Every role converged on gpu-a (fixture a: by the converge tests, or here when run alone): the
    whole playbook then changes nothing."""
    res = play(GPU_NODE, limit="gpu-a")
    assert res.rc == 0, res.output[-5000:]
    assert _counts(res, "gpu-a")["changed"] == 0, res.changed_tasks()


def test_gate_fails_an_unhealthy_node_and_keeps_its_taint(play, prepared, a, report_dir):
    fixtures = Path(__file__).resolve().parent / "fixtures"
    bad = {
        "/etc/infratech-test-double/nvidia-smi.xml": fixtures / "nvidia-smi-q-x.unhealthy-7xH200.xml",
        "/etc/infratech-test-double/dcgmi-diag.json": fixtures / "dcgmi-diag-r1.fail.json",
    }
    for dest, src in bad.items():
        subprocess.run(["scp", *prepared.ssh_args(), str(src), f"root@{prepared.hosts['gpu-a'].ip}:{dest}"], check=True)
    try:
        prepared.ssh("gpu-a", "echo infratech.io/unhealthy > /var/lib/infratech-test-double/taints")
        res = play(ROOT / "playbooks/validate.yml", limit="gpu-a")
        assert res.rc != 0
        assert "failed the GPU health check" in res.output
        assert "GPU count 7, expected 8" in res.output
        assert "row remapping failed" in res.output and "persistence mode is Disabled" in res.output
        assert "dcgmi diag Persistence Mode failed" in res.output
        assert a.file("/var/lib/infratech-test-double/taints").content_string.strip() == "infratech.io/unhealthy"
        report = json.loads(a.file("/var/lib/infratech/gpu_health.json").content_string)
        assert report["healthy"] is False and report["reasons"]
        assert json.loads((report_dir / "gpu-a.json").read_text())["healthy"] is False
        # the taint was already there: the gate keeps it and issues no taint command
        assert "--overwrite" not in a.file("/var/log/kubectl-test-double.log").content_string
    finally:
        _recordings(prepared)  # healthy again for the tests after this one


def test_a_missing_tool_is_a_reason_of_the_gate_not_a_module_crash(play, prepared, a):
    _recordings(prepared)  # a healthy node: the missing tool is the only reason
    res = play(ROOT / "playbooks/validate.yml", limit="gpu-a",
               extra_vars={"gpu_health_dcgmi": "/usr/bin/no-such-dcgmi", "gpu_health_dcgm_install": False})
    assert res.rc != 0
    assert "failed the GPU health check" in res.output
    assert "/usr/bin/no-such-dcgmi is not installed or not on PATH" in res.output
    report = json.loads(a.file("/var/lib/infratech/gpu_health.json").content_string)
    assert report["healthy"] is False and report["tools"]["/usr/bin/no-such-dcgmi"] == "not found"
    again = play(ROOT / "playbooks/validate.yml", limit="gpu-a")
    assert again.rc == 0, again.output[-3000:]


def test_an_xid_of_the_previous_boot_fails_the_gate(play, prepared, a):
    # A journal file holding an earlier boot, written by systemd-journal-remote (Debian's) from the
    # recorded kernel messages, beside journald's own files: the real journalctl reads both.
    _recordings(prepared)  # a healthy node: the XID is the only reason
    fixtures = Path(__file__).resolve().parent / "fixtures"
    messages = [line.split(" kernel: ", 1)[1] for line in (fixtures / "kernel-log.xid.txt").read_text().splitlines()]
    now_us = int(time.time() * 1e6)
    export = "".join(
        f"__REALTIME_TIMESTAMP={now_us - (5 - i) * 600_000_000}\n__MONOTONIC_TIMESTAMP={(i + 1) * 1_000_000}\n"
        f"_BOOT_ID=3f1c2a9e8d7b4c6a9e0f1a2b3c4d5e6f\n_TRANSPORT=kernel\nPRIORITY=4\nSYSLOG_IDENTIFIER=kernel\n"
        f"MESSAGE={m}\n\n" for i, m in enumerate(messages) if "Xid" not in m or " 79," in m)
    setup = ("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd-journal-remote >/dev/null "
             "&& mid=$(cat /etc/machine-id) && dir=/var/log/journal/$mid && { [ -d $dir ] || dir=/run/log/journal/$mid; } "
             "&& echo $dir/infratech-test-double-earlier-boot.journal > /root/earlier-boot-journal "
             f"&& printf '%s' {shlex.quote(export)} > /root/earlier-boot.export "
             "&& /lib/systemd/systemd-journal-remote -o $(cat /root/earlier-boot-journal) /root/earlier-boot.export")
    assert prepared.ssh("gpu-a", setup, timeout=300).returncode == 0
    try:
        # what the gate read before: journalctl -k, which implies -b (this boot only)
        assert "Xid" not in a.run("journalctl -k --no-pager -q --since=-24h").stdout
        res = play(ROOT / "playbooks/validate.yml", limit="gpu-a")
        assert res.rc != 0 and "failed the GPU health check" in res.output, res.output[-3000:]
        assert "XID 79 on PCI:0000:5d:00" in res.output and "earlier boot" in res.output, res.output[-3000:]
        report = json.loads(a.file("/var/lib/infratech/gpu_health.json").content_string)
        assert [(e["xid"], e["boot"]) for e in report["xid_events"]] == [(79, "earlier")]
    finally:
        prepared.ssh("gpu-a", "rm -f $(cat /root/earlier-boot-journal) /root/earlier-boot.export", check=False)
    again = play(ROOT / "playbooks/validate.yml", limit="gpu-a")
    assert again.rc == 0, again.output[-3000:]


def test_handlers_of_a_run_that_fails_the_gate_still_run(play, prepared, a):
    # a change that notifies a restart, then the health check fails the play: the restart must not be lost
    before = a.run("systemctl show -p MainPID --value rke2-agent").stdout.strip()
    _recordings(prepared, dcgm="dcgmi-diag-r1.fail.json")
    try:
        res = play(GPU_NODE, limit="gpu-a", extra_vars={"rke2_node_labels": ["infratech.io/handler-test=1"]})
        assert res.rc != 0 and "failed the GPU health check" in res.output
        assert "RUNNING HANDLER [rke2_node : Restart RKE2]" in res.output
        after = a.run("systemctl show -p MainPID --value rke2-agent").stdout.strip()
        assert after != before and after != "0", "RKE2 was not restarted with its new configuration"
    finally:
        _recordings(prepared)
        restore = play(GPU_NODE, limit="gpu-a")
        assert restore.rc == 0, restore.output[-3000:]


BAD_INPUTS = [
    ("base", {"base_firewall_profile": "rke3_agent"}, "base_firewall_profile"),
    ("base", {"base_ssh_port": "twenty-two"}, "base_ssh_port"),
    ("base", {"base_firewall_cni": "weave"}, "base_firewall_cni"),
    ("base", {"base_firewall_node_cidrs": ["10.0.0.0"]}, "base_firewall_node_cidrs"),
    ("nvidia_driver", {"nvidia_driver_branch": "latest"}, "nvidia_driver_branch"),
    ("nvidia_driver", {"nvidia_driver_reboot": "sometimes"}, "nvidia_driver_reboot"),
    ("nvidia_container_toolkit", {"nvidia_container_toolkit_cdi": "yes-please"}, "nvidia_container_toolkit_cdi"),
    ("rke2_node", {"rke2_node_role": "worker"}, "rke2_node_role"),
    ("rke2_node", {"rke2_node_version": "1.33"}, "rke2_node_version"),
    # RKE2 >= 1.29 accepts "cis" or "etcd" only (rancher/rke2 pkg/cli/cmds/profile_linux.go)
    ("rke2_node", {"rke2_node_cis_profile": "cis-1.23"}, "rke2_node_cis_profile"),
    ("gpu_health", {"gpu_health_dcgm_cuda_major": 11}, "gpu_health_dcgm_cuda_major"),
    ("gpu_health", {"gpu_health_expected_gpu_count": "eight"}, "gpu_health_expected_gpu_count"),
    ("gpu_health", {"gpu_health_dcgm_level": 7}, "gpu_health_dcgm_level"),
    ("nvme_scratch", {"nvme_scratch_devices": ["nvme0n1"]}, "nvme_scratch_devices"),
]


@pytest.mark.parametrize("role,bad,variable", BAD_INPUTS, ids=[f"{r}-{v}" for r, _, v in BAD_INPUTS])
def test_bad_input_is_rejected_at_the_start_naming_the_variable(play, prepared, role, bad, variable):
    res = play(ROLE_PLAY, {"converge_role": role, "converge_hosts": "gpu-a", **bad})
    assert res.rc != 0
    assert variable in res.output
    recap = _counts(res, "gpu-a")
    assert recap["changed"] == 0 and recap["ok"] <= 2, "the role must stop before changing anything"


def test_check_mode_on_a_fresh_host_does_not_fail(play, prepared):
    res = play(GPU_NODE, check=True, limit="gpu-b", extra_vars={"gpu_health_enabled": False})
    assert res.rc == 0, res.output[-5000:]
    assert _counts(res, "gpu-b")["failed"] == 0
    # check mode changed nothing for real
    assert prepared.ssh("gpu-b", "test -e /etc/apt/sources.list.d/nvidia-cuda.sources", check=False).returncode == 1


def test_a_run_killed_half_way_converges_when_re_run(play, prepared, inventory):
    cmd = harness.playbook_cmd(GPU_NODE, inventory, {"gpu_health_enabled": False}, limit="gpu-b")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=harness.ansible_env(play.facts), text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    seen = []
    deadline = time.time() + 900
    for line in proc.stdout:
        seen.append(line)
        # kill while the driver packages are being installed: apt/dpkg are interrupted too
        if "TASK [nvidia_driver : Ensure the driver of the pinned branch is installed]" in line:
            time.sleep(1.5)
            os.killpg(proc.pid, signal.SIGKILL)
            break
        if time.time() > deadline:
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    again = play(GPU_NODE, limit="gpu-b", extra_vars={"gpu_health_enabled": False})
    assert again.rc == 0, again.output[-5000:]
    noop = play(GPU_NODE, limit="gpu-b", extra_vars={"gpu_health_enabled": False})
    assert noop.rc == 0 and _counts(noop, "gpu-b")["changed"] == 0, noop.changed_tasks()
    b = harness.infra_host(prepared, "gpu-b")
    assert b.package("nvidia-open").version == PINNED_DRIVER
    assert b.service("rke2-server").is_running
    assert b.user("etcd").exists  # CIS profile on a server
