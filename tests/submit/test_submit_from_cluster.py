"""`infratech submit` and `infratech jobs` with nothing but a kubeconfig: the team's description read
from the cluster (the kube-apiserver double of api_server_double.py serves the ConfigMaps the
default stack's plan declares), the same manifests as from the plan, no Pulumi CLI, and clear
refusals when the user is not a member of the team or the platform predates the description."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import api_server_double
import pytest
from api_server_double import ApiServerDouble

from infratech.cli.submit import cli, render, resolve
from infratech.exits import EXIT_TOOL
from infratech.team_description import CONFIGMAP

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "jobs"


def parse(argv):
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command", required=True), "ovh-gra11")
    return parser.parse_args(argv)


def published(plan):
    """The ConfigMaps infratech-team of the plan, as the API server would hold them once applied."""
    return {
        (r.inputs["metadata"]["namespace"], "configmaps", CONFIGMAP): {**r.inputs, "metadata": dict(r.inputs["metadata"])}
        for r in plan.resources
        if r.type == "kubernetes:core/v1:ConfigMap" and r.inputs["metadata"]["name"] == CONFIGMAP
    }


@pytest.fixture
def kubeconfig(api_server, discovery_cache, tmp_path, monkeypatch):
    """Only a kubeconfig, as a researcher has: $KUBECONFIG names it, the current context is the team's."""
    path = api_server_double.kubeconfig(api_server, tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def run(argv, capsys):
    code = cli.run(parse(argv), _project())
    out = capsys.readouterr()
    return code, out.out, out.err


def _project():
    from infratech.cli.stacks import find_project

    return find_project(ROOT)


@pytest.mark.parametrize("kind", ["train", "eval", "serve"])
def test_dry_run_from_the_cluster_should_be_byte_for_byte_the_plans(kind, default_plan, kubeconfig, capsys, monkeypatch):
    _helm_or_skip()
    api_server_double.reset(published(default_plan))
    job = str(EXAMPLES / f"{kind}-tiny.yaml")
    code, from_cluster, err_cluster = run(["submit", kind, job, "--dry-run", "--outputs", "cluster"], capsys)
    assert code == 0, err_cluster
    assert any(r["path"].endswith(f"/configmaps/{CONFIGMAP}") for r in ApiServerDouble.requests)
    monkeypatch.setattr(resolve, "stack_outputs", lambda project, stack, source: dict(default_plan.outputs))
    code, from_plan, err_plan = run(["submit", kind, job, "--dry-run"], capsys)
    assert code == 0, err_plan
    assert from_cluster == from_plan and from_cluster.strip()
    assert err_cluster.splitlines()[-1] == err_plan.splitlines()[-1]  # the same summary: stack, team, queue, flavour


def _helm_or_skip():
    try:
        return render.require_helm(ROOT)
    except render.HelmMissing as exc:
        pytest.skip(str(exc))


def test_a_real_submission_should_apply_through_the_users_kubeconfig(default_plan, kubeconfig, capsys):
    _helm_or_skip()
    api_server_double.reset(published(default_plan))
    code, out, err = run(["submit", "train", str(EXAMPLES / "train-tiny.yaml"), "--server-dry-run"], capsys)
    assert code == 0, err
    patch = [r for r in ApiServerDouble.requests if r["method"] == "PATCH"]
    assert [r["path"] for r in patch] == ["/apis/trainer.kubeflow.org/v1alpha1/namespaces/pretraining/trainjobs/tiny"]
    assert "TrainJob/tiny validated (server dry run)" in out


def test_jobs_should_need_only_a_kubeconfig_and_no_pulumi_on_path(default_plan, kubeconfig, tmp_path):
    """In a process of its own whose PATH holds nothing: no Pulumi CLI, no helm, no kubectl."""
    api_server_double.reset(published(default_plan))
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = {"PATH": str(empty), "KUBECONFIG": str(kubeconfig), "TMPDIR": str(tmp_path), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for argv, expected in ((["list", "--team", "pretraining"], "llama-1b-run3"), (["status", "tiny", "--team", "pretraining"], "state:     Running")):
        done = subprocess.run([sys.executable, "-m", "infratech.cli", "jobs", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout
    paths = [r["path"] for r in ApiServerDouble.requests]
    assert "/api/v1/namespaces/pretraining/configmaps/infratech-team" in paths
    assert "/apis/kueue.x-k8s.io/v1beta2/namespaces/pretraining/workloads" in paths


@pytest.mark.parametrize(
    "argv",
    [["jobs", "list", "--team", "pretraining"], ["submit", "train", str(EXAMPLES / "train-tiny.yaml"), "--dry-run", "--outputs", "cluster"]],
)
def test_a_403_should_say_the_user_is_not_a_member_of_the_team(argv, default_plan, kubeconfig, capsys):
    api_server_double.reset(published(default_plan), forbidden={"pretraining"})
    code, out, err = run(argv, capsys)
    assert code == EXIT_TOOL and out == ""
    assert err.startswith("error: you are not a member of team 'pretraining'")
    assert "Ask the platform team to add you to the team's group" in err and "infratech:pretraining" in err
    assert "Traceback" not in err


def test_a_cluster_without_the_description_should_say_its_platform_is_older(kubeconfig, capsys):
    api_server_double.reset({})
    code, out, err = run(["jobs", "list", "--team", "pretraining"], capsys)
    assert code == EXIT_TOOL and out == ""
    assert "namespace 'pretraining' has no ConfigMap infratech-team: the platform on this cluster is older than this CLI" in err
    assert "--stack STACK" in err


def test_a_description_of_another_shape_should_be_refused_naming_both(default_plan, kubeconfig, capsys):
    objects = published(default_plan)
    cm = objects[("pretraining", "configmaps", CONFIGMAP)]
    cm["data"] = {"team.yaml": cm["data"]["team.yaml"].replace("team-description/v1", "team-description/v9")}
    api_server_double.reset(objects)
    code, _, err = run(["jobs", "list", "--team", "pretraining"], capsys)
    assert code == EXIT_TOOL
    assert "has schema 'infratech.io/team-description/v9'; this CLI reads 'infratech.io/team-description/v1'" in err
