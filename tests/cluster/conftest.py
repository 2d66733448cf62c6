"""Fixtures of the cluster tests: three booted hosts standing for a stack's servers, shared by the
module, bootstrapped once with a run killed half-way first (tests/cluster/cluster_harness.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "roles"))

import cluster_harness as cluster  # noqa: E402
import roles_harness as harness  # noqa: E402
import standins  # noqa: E402


@pytest.fixture(scope="module")
def site(project, tmp_path_factory):
    reason = harness.skip_reason()
    if reason:
        pytest.skip(f"cluster tests skipped: {reason}")
    work = tmp_path_factory.mktemp("cluster")
    web = standins.build_kernel_headers_repo(standins.build_nvidia_repo(work / "web"))
    artifacts = standins.build_rke2_artifacts(work / "rke2-artifacts")
    reports = work / "gpu-health-reports"
    reports.mkdir()
    try:
        with standins.RepoServer(web) as server, harness.Fleet(list(cluster.HOSTS), work / "fleet") as fleet:
            cluster.prepare(fleet, work, server.port, artifacts, reports)
            token, outputs = cluster.new_token(), cluster.stack_outputs(project, fleet, work)
            yield cluster.Site(
                fleet=fleet, workdir=work, outputs=outputs, token=token, stack=cluster.StackDouble(outputs, token),
                node_vars=cluster.write_node_vars(work / "node-vars.yml", server.port, artifacts, reports),
                environ=cluster.ansible_environ(fleet, work))
    except (RuntimeError, TimeoutError) as exc:
        if "exited while booting" in str(exc):
            pytest.skip(f"systemd-nspawn cannot boot a container here: {str(exc)[:400]}")
        raise


@pytest.fixture(scope="module")
def killed(site):
    """A first bootstrap, SIGKILLed once the first host (the server) has RKE2 installed; with which
    hosts had the RKE2 binary right after the kill."""
    run = site.bootstrap(kill_after_first_rke2_install=True)
    run.hosts_with_rke2 = {name for name in cluster.HOSTS
                           if site.fleet.ssh(name, "test -e /usr/local/bin/rke2", check=False).returncode == 0}
    return run


@pytest.fixture(scope="module")
def converged(site, killed):
    """The bootstrap rerun after the killed one."""
    return site.bootstrap()


@pytest.fixture(scope="module")
def rerun(site, converged):
    """The bootstrap once more on the converged cluster."""
    return site.bootstrap()
