"""Fixtures of the role tests: the stand-in repository and artifacts, and booted Debian 12 hosts.

Hosts are booted once per session (two of them) and shared: ``gpu-a`` converges every role in turn,
``gpu-b`` stays fresh for the check-mode run and the interrupted run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import roles_harness as harness
import standins

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def host_skip():
    reason = harness.skip_reason()
    if reason:
        pytest.skip(f"role host tests skipped: {reason}")


@pytest.fixture(scope="session")
def web_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("standin-web")
    standins.build_nvidia_repo(root)
    standins.build_kernel_headers_repo(root)
    return root


@pytest.fixture(scope="session")
def repo_server(host_skip, web_root):
    with standins.RepoServer(web_root) as server:
        yield server


@pytest.fixture(scope="session")
def rke2_supervisor(host_skip):
    """The RKE2 server gpu-a joins (TEST DOUBLE of its supervisor port)."""
    with standins.SupervisorStandIn() as server:
        yield server


@pytest.fixture(scope="session")
def rke2_artifacts(tmp_path_factory):
    return standins.build_rke2_artifacts(tmp_path_factory.mktemp("rke2-artifacts"))


@pytest.fixture(scope="session")
def fleet(host_skip, tmp_path_factory):
    try:
        with harness.Fleet(["gpu-a", "gpu-b"], tmp_path_factory.mktemp("fleet")) as booted:
            yield booted
    except (RuntimeError, TimeoutError) as exc:
        if "exited while booting" in str(exc):
            pytest.skip(f"systemd-nspawn cannot boot a container here: {str(exc)[:400]}")
        raise


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory):
    """Where gpu_health writes the controller's copies of the reports (one per session)."""
    return tmp_path_factory.mktemp("gpu-health-reports")


def standin_vars(repo_server, rke2_artifacts, report_dir, rke2_supervisor) -> dict:
    """Group variables pointing the roles at the TEST DOUBLES, with a join token and the URL of the
    stand-in supervisor (everything else is the roles' defaults)."""
    return {**standins.role_vars(repo_server.port, rke2_artifacts, report_dir),
            "rke2_node_token": "test-double-token",
            "rke2_node_server_url": "https://{{ test_controller_address }}:%d" % rke2_supervisor.port}


@pytest.fixture(scope="session")
def inventory(fleet, repo_server, rke2_artifacts, report_dir, rke2_supervisor, tmp_path_factory):
    path = tmp_path_factory.mktemp("inventory") / "hosts.yml"
    group_vars = standin_vars(repo_server, rke2_artifacts, report_dir, rke2_supervisor)
    return fleet.inventory(
        path,
        groups={"gpu_nodes": ["gpu-a", "gpu-b"], "rke2_servers": ["gpu-b"]},
        host_vars={"gpu-b": {"rke2_node_role": "server", "rke2_node_server_url": "",
                             "base_firewall_profile": "rke2_server", "nvidia_container_toolkit_runtime": "rke2"}},
        group_vars={"gpu_nodes": group_vars},
    )


@pytest.fixture(scope="session")
def play(inventory, tmp_path_factory):
    facts = tmp_path_factory.mktemp("facts")

    def run(playbook, extra_vars=None, check=False, limit=None, timeout=1200):
        return harness.run_playbook(Path(playbook), inventory, facts, extra_vars, check, limit, timeout)

    run.facts = facts
    return run


@pytest.fixture(scope="session")
def prepared(fleet, play):
    res = play(HERE / "playbooks/prepare.yml")
    assert res.rc == 0, res.output[-4000:]
    return fleet
