"""`infratech up` in phases for self-built clusters, with the Automation API and ansible-playbook
replaced by recorders (no Pulumi CLI, no hosts here)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from infratech.cli import EXIT_TOOL, main, phases
from infratech.cli.phases import KUBECONFIG_KEY, PhaseFailed, Runner

TOKEN = "tok-S3CRET-0123456789"
STACK = "baremetal-onprem"
KUBECONFIG = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n"


class StackRecorder:
    """Test double of the Automation API's stack: records every call; ``up`` makes the outputs a
    real up would (hosts, the join token as a secret) and echoes progress lines. The engine masks
    secrets it creates ([secret]); once the token exists, a later up echoes it in plain text, as a
    careless provider log line might, so that the runner's own scrubbing is what is tested."""

    def __init__(self, calls: list):
        self.calls, self.config, self._outputs = calls, {}, {}

    def up(self, echo):
        self.calls.append(("up", bool(self.config.get(KUBECONFIG_KEY))))
        known = self._outputs.get("join_token", (None, True))[0]
        echo(f"Updating (stack): token {known or '[secret]'}")
        self._outputs = {
            "provider": ("baremetal", False), "region": ("dc2", False), "join_token": (TOKEN, True),
            "pools": ([{"name": "system", "role": "system", "gpus_per_node": 0, "labels": {}, "taints": []},
                       {"name": "h100", "role": "training", "gpus_per_node": 8, "gpu_model": "h100-80gb", "labels": {},
                        "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]}], False),
            "inventory": ({"server_url": "https://10.20.0.11:9345", "api_endpoint": "k8s.dc2.example.org",
                           "hosts": [{"name": "cp-1", "address": "10.20.0.11", "pool": "system", "rke2_role": "server"},
                                     {"name": "h100-1", "address": "10.20.1.21", "pool": "h100", "rke2_role": "agent"}]}, False),
        }

    def outputs(self):
        return dict(self._outputs)

    def get_config(self, key):
        return self.config.get(key)

    def set_secret_config(self, key, value):
        self.calls.append(("set_secret_config", key))
        self.config[key] = value


class AnsibleRecorder:
    """Test double of ansible-playbook: records argv and the token's route, checks the inventory it
    is given, writes the kubeconfig where the fetch playbook is told to; ``fail_on`` exits 2."""

    def __init__(self, calls: list, fail_on: str = ""):
        self.calls, self.fail_on, self.seen = calls, fail_on, []

    def __call__(self, argv, env, cwd):
        playbook = argv[3]
        self.calls.append(("ansible", playbook))
        inventory = Path(argv[2]).read_text(encoding="utf-8")
        self.seen.append((argv, env.get("RKE2_TOKEN"), inventory))
        assert (Path(cwd) / playbook).is_file(), f"{playbook} is not a playbook of the project"
        children = yaml.safe_load(inventory)["all"]["children"]
        assert list(children["rke2_servers"]["hosts"]) == ["cp-1"] and list(children["rke2_agents"]["hosts"]) == ["h100-1"]
        assert children["pool_system"]["hosts"]["cp-1"]["ansible_host"] == "10.20.0.11"
        if self.fail_on and self.fail_on in playbook:
            return 2
        if playbook.endswith("fetch_kubeconfig.yml"):
            dest = next(a.split("=", 1)[1] for a in argv if a.startswith("infratech_kubeconfig_dest="))
            Path(dest).write_text(KUBECONFIG, encoding="utf-8")
        return 0


@pytest.fixture
def run(project):
    calls, lines = [], []
    stack = StackRecorder(calls)

    def runner(fail_on: str = "", only=None):
        ansible = AnsibleRecorder(calls, fail_on)
        r = Runner(project.root, STACK, stack, ansible=ansible, echo=lines.append)
        return r, ansible

    return stack, calls, lines, runner


def test_phases_run_in_order_and_the_platform_up_sees_the_kubeconfig(run):
    stack, calls, lines, runner = run
    r, _ = runner()
    assert r.run() == ["infrastructure", "bootstrap", "platform"]
    assert calls == [("up", False), ("ansible", "playbooks/site.yml"), ("ansible", "playbooks/fetch_kubeconfig.yml"),
                     ("set_secret_config", KUBECONFIG_KEY), ("up", True)]
    assert [line for line in lines if line.endswith("running")] == [
        "[infrastructure] running", "[bootstrap] running", "[platform] running"]


def test_kubeconfig_points_at_the_api_endpoint_and_is_kept_as_a_secret(run):
    stack, _, _, runner = run
    runner()[0].run()
    assert "server: https://k8s.dc2.example.org:6443" in stack.config[KUBECONFIG_KEY]
    assert "127.0.0.1" not in stack.config[KUBECONFIG_KEY]


def test_rerun_skips_what_is_done(run):
    stack, calls, lines, runner = run
    runner()[0].run()
    calls.clear()
    assert runner()[0].run() == ["platform"]
    assert calls == [("up", True)], "no second bootstrap, no up without the kubeconfig"
    assert "[bootstrap] done already (the bootstrap wrote the kubeconfig): skipped" in lines


def test_one_phase_reruns_alone(run):
    stack, calls, _, runner = run
    runner()[0].run()
    calls.clear()
    assert runner()[0].run("bootstrap") == ["bootstrap"]
    assert [c for c in calls if c[0] == "up"] == []


def test_a_failed_phase_stops_the_run_naming_it(run):
    stack, calls, _, runner = run
    r, _ = runner(fail_on="site.yml")
    with pytest.raises(PhaseFailed, match=r"^phase bootstrap failed: ansible-playbook playbooks/site.yml exited 2$"):
        r.run()
    assert r.ran == ["infrastructure"] and KUBECONFIG_KEY not in stack.config
    assert ("up", True) not in calls, "the platform never ran"


def test_platform_before_bootstrap_is_refused(run):
    _, _, _, runner = run
    with pytest.raises(PhaseFailed, match="phase platform failed: no infratech:kubeconfig"):
        runner()[0].run("platform")


def test_the_token_reaches_ansible_by_environment_only_and_no_output_holds_it(run):
    _, _, lines, runner = run
    r, ansible = runner()
    r.run()
    for argv, env_token, inventory in ansible.seen:
        assert env_token == TOKEN
        assert not any(TOKEN in a for a in argv) and TOKEN not in inventory
        assert yaml.safe_load(inventory)["all"]["vars"]["rke2_node_token"] == "{{ lookup('ansible.builtin.env', 'RKE2_TOKEN') }}"
    r.run("platform")  # a later up, whose log line holds the token
    assert lines and not any(TOKEN in line for line in lines)
    assert lines.count("Updating (stack): token [secret]") == 3


def test_cli_up_of_a_self_built_stack_runs_the_phases_and_stops_on_failure(project, monkeypatch, capsys, tmp_path):
    calls = []
    monkeypatch.setattr(phases.deploy, "open_stack", lambda *a, **k: None)
    monkeypatch.setattr(phases, "AutomationStack", lambda stack, progress=None: StackRecorder(calls))
    monkeypatch.setattr(phases, "logged_ansible", lambda log, note=None: AnsibleRecorder(calls, fail_on="site.yml"))
    monkeypatch.setattr(phases.deploy, "log_file", lambda project, stack, action: tmp_path / f"{stack}-{action}.log")
    assert main(["up", STACK]) == EXIT_TOOL
    out = capsys.readouterr()
    log = tmp_path / f"{STACK}-up.log"
    assert "error: phase bootstrap failed" in out.err and f"(the tools' output: {log})" in out.err
    # on screen the progress (the log named first); the tools' own lines in the log
    assert f"Pulumi's and Ansible's output: {log}" in out.err.splitlines()[0]
    assert "infrastructure: done" in out.err and "bootstrap: failed: ansible-playbook playbooks/site.yml exited 2 (0/2, " in out.err
    assert "[infrastructure] done" in log.read_text() and "Updating (stack)" in log.read_text()
    assert "Updating (stack)" not in out.out + out.err
    assert TOKEN not in out.out + out.err + log.read_text()
    assert main(["up", "ovh-gra11", "--phase", "bootstrap"]) == 2, "--phase is for self-built stacks only"


def test_node_vars_reach_every_playbook_as_an_extra_vars_file(project, tmp_path):
    calls = []
    node_vars = tmp_path / "site.yml"
    node_vars.write_text("rke2_node_artifacts_dir: /srv/airgap/rke2\n", encoding="utf-8")
    ansible = AnsibleRecorder(calls)
    Runner(project.root, STACK, StackRecorder(calls), ansible=ansible, echo=lambda _: None, node_vars=node_vars).run()
    argvs = [argv for argv, _, _ in ansible.seen]
    assert len(argvs) == 2 and all(argv[4:6] == ["-e", f"@{node_vars}"] for argv in argvs), argvs


@pytest.mark.parametrize("content,named", [
    ("rke2_node_token: hunter2hunter2\n", "rke2_node_token may not be set here"),
    ("rke2_node_server_url: https://10.0.0.1:9345\n", "rke2_node_server_url may not be set here"),
    ("- rke2_node_artifacts_dir\n", "must be a mapping of Ansible variables, got list"),
    ("a: [\n", "not YAML"),
    (None, "cannot be read"),
])
def test_cli_refuses_a_node_vars_file_by_name_before_anything_runs(project, monkeypatch, capsys, tmp_path, content, named):
    calls = []
    monkeypatch.setattr(phases.deploy, "open_stack", lambda *a, **k: None)
    monkeypatch.setattr(phases, "AutomationStack", lambda _: StackRecorder(calls))
    monkeypatch.setattr(phases, "run_ansible", AnsibleRecorder(calls))
    node_vars = tmp_path / "node-vars.yml"
    if content is not None:
        node_vars.write_text(content, encoding="utf-8")
    assert main(["up", STACK, "--node-vars", str(node_vars)]) == 2
    err = capsys.readouterr().err
    assert f"--node-vars {node_vars}: " in err and named in err, err
    assert "hunter2" not in err and "Traceback" not in err
    assert calls == [], "nothing ran"


def test_node_vars_are_for_self_built_stacks_only(project, capsys, tmp_path):
    node_vars = tmp_path / "node-vars.yml"
    node_vars.write_text("{}\n", encoding="utf-8")
    assert main(["up", "ovh-gra11", "--node-vars", str(node_vars)]) == 2
    assert "--node-vars applies to self-built clusters" in capsys.readouterr().err


def test_no_file_of_the_bootstrap_is_left_behind(run):
    _, _, _, runner = run
    r, ansible = runner()
    r.run()
    assert not Path(ansible.seen[0][0][2]).parent.exists(), "inventory and fetched kubeconfig are removed"


class KubectlRecorder:
    """Test double of kubectl: records its arguments and the kubeconfig it is given (which must be
    a 0600 file holding the stored kubeconfig); ``fail_on`` (a verb) exits 1."""

    def __init__(self, calls: list, fail_on: str = ""):
        self.calls, self.fail_on, self.files = calls, fail_on, []

    def __call__(self, argv, env):
        path = Path(env["KUBECONFIG"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and "k8s.dc2.example.org" in path.read_text()
        self.files.append(path)
        self.calls.append(("kubectl", *argv[:4]))
        return 1 if self.fail_on and self.fail_on in argv else 0


def test_a_host_leaving_the_stack_is_drained_and_deleted_before_the_up_that_removes_it(run, project):
    stack, calls, lines, runner = run
    runner()[0].run()
    calls.clear()
    kubectl = KubectlRecorder(calls)
    r = Runner(project.root, STACK, stack, ansible=AnsibleRecorder(calls), echo=lines.append, kubectl=kubectl,
               planned_hosts=lambda: {"cp-1"})  # h100-1 removed from the stack file
    assert r.run() == ["platform"]
    assert calls == [("kubectl", "drain", "h100-1", "--ignore-daemonsets", "--delete-emptydir-data"),
                     ("kubectl", "delete", "node", "h100-1", "--ignore-not-found"),
                     ("kubectl", "-n", "kube-system", "delete", "secret"),
                     ("up", True)]
    assert not any(f.exists() for f in kubectl.files), "the kubeconfig file is removed"


def test_a_failed_drain_keeps_the_machine(run, project):
    stack, calls, lines, runner = run
    runner()[0].run()
    calls.clear()
    r = Runner(project.root, STACK, stack, ansible=AnsibleRecorder(calls), echo=lines.append,
               kubectl=KubectlRecorder(calls, fail_on="drain"), planned_hosts=lambda: {"cp-1"})
    with pytest.raises(PhaseFailed, match="phase platform failed: kubectl drain h100-1 exited 1; its machine is kept"):
        r.run()
    assert ("up", True) not in calls


def test_nothing_is_retired_when_every_host_stays(run, project):
    stack, calls, lines, runner = run
    runner()[0].run()
    calls.clear()
    r = Runner(project.root, STACK, stack, ansible=AnsibleRecorder(calls), echo=lines.append,
               kubectl=KubectlRecorder(calls), planned_hosts=lambda: {"cp-1", "h100-1"})
    r.run()
    assert calls == [("up", True)]


def test_the_planned_hosts_come_from_the_offline_plan_of_the_stack_file(project):
    assert phases._planned_hosts(project, STACK) == {"cp-1", "cp-2", "cp-3", "h100-1", "h100-2", "h100-3", "h100-4"}
    assert phases._planned_hosts(project, "outscale-cloudgouv-a100") == {"llm-gouv-system-1", "llm-gouv-a100-1", "llm-gouv-a100-2"}
