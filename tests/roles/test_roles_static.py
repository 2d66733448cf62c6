"""Checks of the roles that need no host: the API files agree, READMEs are complete, lint passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import roles_harness as harness
import yaml

ROOT = harness.ROOT
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
SPEC_TYPES = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict, "float": (float, int), "path": str}


def _load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_six_roles_exist():
    assert ROLES == sorted(["base", "gpu_health", "nvidia_container_toolkit", "nvidia_driver", "nvme_scratch", "rke2_node"])


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_types_every_default_and_nothing_else(role):
    defaults = _load(ROOT / "roles" / role / "defaults/main.yml") or {}
    options = _load(ROOT / "roles" / role / "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options), "defaults/main.yml and meta/argument_specs.yml name different variables"
    for name, value in defaults.items():
        assert name.startswith(role + "_"), f"{name} is not prefixed with the role name"
        spec = options[name]
        assert spec.get("description"), f"{name} has no description"
        assert isinstance(value, SPEC_TYPES[spec["type"]]) and not (spec["type"] == "int" and isinstance(value, bool)), \
            f"{name}: default {value!r} is not a {spec['type']}"
        if "choices" in spec:
            assert value in spec["choices"], f"{name}: default {value!r} not among {spec['choices']}"
        if "default" in spec:
            assert spec["default"] == value, f"{name}: argument spec default {spec['default']!r} != defaults/main.yml {value!r}"


@pytest.mark.parametrize("role", ROLES)
def test_internal_variables_are_prefixed(role):
    for path in (ROOT / "roles" / role / "vars").glob("*.yml"):
        for name in _load(path) or {}:
            assert name.startswith(f"_{role}_"), f"{path.name}: {name} should be _{role}_…"


@pytest.mark.parametrize("role", ROLES)
def test_readme_has_the_house_sections(role):
    text = (ROOT / "roles" / role / "README.md").read_text(encoding="utf-8")
    for section in ("## Requirements", "## Variables", "## Example", "## Upgrading"):
        assert section in text, f"roles/{role}/README.md lacks {section}"
    defaults = _load(ROOT / "roles" / role / "defaults/main.yml") or {}
    missing = [v for v in defaults if f"`{v}`" not in text]
    assert not missing, f"README does not document {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_every_notify_has_a_listener_with_the_same_case(role):
    handlers = _load(ROOT / "roles" / role / "handlers/main.yml") if (ROOT / "roles" / role / "handlers/main.yml").exists() else []
    topics = {h.get("listen") for h in handlers or []} | {h["name"] for h in handlers or []}
    for path in (ROOT / "roles" / role / "tasks").glob("*.yml"):
        for task in _walk(_load(path) or []):
            for topic in _as_list(task.get("notify")):
                assert topic in topics, f"{path.name}: notify {topic!r} reaches no handler (case matters)"


def _as_list(value):
    return [] if value is None else value if isinstance(value, list) else [value]


def _walk(tasks):
    for task in tasks:
        yield task
        for key in ("block", "rescue", "always"):
            yield from _walk(task.get(key) or [])


def test_playbooks_pass_syntax_check(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"gpu_nodes": {"hosts": {"n1": None}},
                                                          "rke2_servers": {"hosts": {"s1": None}}}}}))
    env = harness.ansible_env(tmp_path / "facts")
    for playbook in ("site.yml", "gpu_node.yml", "validate.yml"):
        res = subprocess.run([str(harness.ANSIBLE_BIN / "ansible-playbook"), "--syntax-check", "-i", str(inv),
                              str(ROOT / "playbooks" / playbook)], cwd=ROOT, env=env, text=True, capture_output=True, stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res.stdout + res.stderr


def test_ansible_lint_production_profile_passes():
    lint = harness.ANSIBLE_BIN / "ansible-lint"
    if not lint.exists():
        pytest.skip("ansible-lint is not installed (pip install -e '.[roles]')")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "NO_COLOR": "1"}
    res = subprocess.run([str(lint), "--profile", "production", "roles", "playbooks"], cwd=ROOT, env=env,
                         text=True, capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]


# NVIDIA's Ubuntu package names per branch, as NVIDIA's driver installation guide gives them ("Ubuntu
# 590 and later packages": the branch leaves the names from 590 on; Fabric Manager unversioned from
# 580 in the CUDA repositories). The Debian names are exercised on the test hosts; these are not
# (no recorded index of NVIDIA's Ubuntu repositories could be obtained).
UBUNTU_NAMES = [
    ("570", True, "nvidia-dkms-570-open", "nvidia-fabricmanager-570"),
    ("580", True, "nvidia-dkms-580-open", "nvidia-fabricmanager"),
    ("580", False, "nvidia-dkms-580", "nvidia-fabricmanager"),
    ("590", True, "nvidia-dkms-open", "nvidia-fabricmanager"),
    ("590", False, "nvidia-dkms", "nvidia-fabricmanager"),
]


@pytest.mark.parametrize("release", ["22", "24"])
def test_ubuntu_driver_package_names_follow_nvidias_naming(tmp_path, release):
    play = tmp_path / "names.yml"
    play.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "connection": "local",
        "tasks": [
            {"ansible.builtin.include_vars": str(ROOT / f"roles/nvidia_driver/vars/Ubuntu-{release}.yml")},
            {"ansible.builtin.debug": {"msg": "NAMES {{ nvidia_driver_branch }} {{ nvidia_driver_open_kernel_modules }} "
                                              "{{ _nvidia_driver_kernel_package }} {{ _nvidia_driver_fabricmanager_package }}"}},
        ],
    }]))
    env = harness.ansible_env(tmp_path / "facts")
    for branch, open_modules, dkms, fabricmanager in UBUNTU_NAMES:
        res = subprocess.run([str(harness.ANSIBLE_BIN / "ansible-playbook"), "-i", "localhost,", str(play),
                              "-e", json.dumps({"nvidia_driver_branch": branch, "nvidia_driver_open_kernel_modules": open_modules})],
                             cwd=ROOT, env=env, text=True, capture_output=True, stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"NAMES {branch} {open_modules} {dkms} {fabricmanager}" in res.stdout, res.stdout[-1500:]


@pytest.mark.parametrize("block", ["/dev/nvme0n1", "/dev/md/scratch"], ids=["single-disk", "raid0"])
def test_scratch_mount_unit_finds_the_filesystem_by_label_not_by_kernel_name(tmp_path, block):
    # The role's own template, rendered by Ansible with the role's defaults for the device it chose (a
    # single disk is used directly, several through the array): kernel names follow probe order.
    unit = tmp_path / "scratch.mount"
    play = tmp_path / "unit.yml"
    play.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "connection": "local",
        "tasks": [
            {"ansible.builtin.include_vars": str(ROOT / "roles/nvme_scratch/defaults/main.yml")},
            {"ansible.builtin.template": {"src": str(ROOT / "roles/nvme_scratch/templates/scratch.mount.j2"),
                                          "dest": str(unit), "mode": "0644"}},
        ],
    }]))
    res = subprocess.run([str(harness.ANSIBLE_BIN / "ansible-playbook"), "-i", "localhost,", str(play),
                          "-e", json.dumps({"_nvme_scratch_block": block, "nvme_scratch_label": "jobscratch",
                                            "ansible_python_interpreter": sys.executable})],
                         cwd=ROOT, env=harness.ansible_env(tmp_path / "facts"), text=True, capture_output=True,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout + res.stderr
    what = [line for line in unit.read_text().splitlines() if line.startswith("What=")]
    assert what == ["What=/dev/disk/by-label/jobscratch"], what
    assert block not in unit.read_text()


def test_the_bootstrap_reaches_every_host_of_a_stack_servers_first_and_in_batches(tmp_path):
    """site.yml, as the bootstrap runs it, on an inventory with a server, GPU agents and an agent of a
    CPU pool: every host is in a play, the servers' play comes first, and node plays are batched."""
    from infratech.cli import inventory as _inventory

    outputs = {"provider": "baremetal", "region": "onprem", "pools": [
        {"name": "system", "role": "system", "labels": {}, "taints": []},
        {"name": "cpu", "role": "inference", "labels": {}, "taints": []},
        {"name": "h100", "role": "training", "gpus_per_node": 8, "gpu_model": "h100-80gb", "labels": {}, "taints": []}],
        "inventory": {"hosts": [
            {"name": "cp-1", "address": "192.0.2.1", "pool": "system", "rke2_role": "server"},
            {"name": "cpu-1", "address": "192.0.2.2", "pool": "cpu", "rke2_role": "agent"},
            {"name": "gpu-1", "address": "192.0.2.3", "pool": "h100", "rke2_role": "agent"},
            {"name": "gpu-2", "address": "192.0.2.4", "pool": "h100", "rke2_role": "agent"}]}}
    inv = tmp_path / "hosts.yml"
    inv.write_text(_inventory.render(outputs, "bench"), encoding="utf-8")
    env = harness.ansible_env(tmp_path / "facts")
    res = subprocess.run([str(harness.ANSIBLE_BIN / "ansible-playbook"), "--list-hosts", "-i", str(inv),
                          "-e", "infratech_node_batch=1", str(ROOT / "playbooks" / "site.yml")],
                         cwd=ROOT, env=env, text=True, capture_output=True, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout + res.stderr
    plays = res.stdout.split("play #")[1:]
    hosts_per_play = [[line.strip() for line in block.split("hosts (", 1)[1].splitlines()[1:] if line.strip()] for block in plays]
    assert hosts_per_play[0] == ["cp-1"], res.stdout
    everyone = [h for hosts in hosts_per_play for h in hosts]
    assert sorted(everyone) == ["cp-1", "cpu-1", "gpu-1", "gpu-2"], res.stdout  # each host once
    # every play after the servers' rolls out in batches of infratech_node_batch hosts
    node_plays = [p for p in yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())[1:] if "hosts" in p]
    node_plays += [p for p in yaml.safe_load((ROOT / "playbooks" / "gpu_node.yml").read_text()) if "hosts" in p]
    assert node_plays and all("infratech_node_batch" in str(p.get("serial")) for p in node_plays), node_plays
