"""infratech/cli/submit/cluster.py, the one module that talks to an API server, driven through the
real `kubernetes` client against the kube-apiserver double of api_server_double.py (discovery,
server-side apply, get, list, delete, logs, errors), which records each request. No real API
server can run here: this checks what goes on the wire, not what a cluster then does."""

from __future__ import annotations

import api_server_double
import pytest
import yaml
from api_server_double import ApiServerDouble
from fake_cluster import workloads

from infratech.cli.submit.cluster import (
    FIELD_MANAGER,
    ClusterError,
    Forbidden,
    KubeCluster,
    NotServed,
)

@pytest.fixture
def cluster(api_server, discovery_cache, tmp_path):
    api_server_double.reset()
    return KubeCluster(context="fake", config_file=str(api_server_double.kubeconfig(api_server, tmp_path / "kubeconfig")))


TRAINJOB = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "TrainJob",
    "metadata": {"name": "tiny", "namespace": "pretraining", "labels": {"kueue.x-k8s.io/queue-name": "pretraining"}},
    "spec": {"suspend": True, "runtimeRef": {"name": "torch-distributed-infratech"}},
}


def test_apply_should_be_a_server_side_apply_by_infratech_submit_without_forcing(cluster):
    assert cluster.apply(TRAINJOB)["metadata"]["name"] == "tiny"
    (request,) = ApiServerDouble.requests
    assert request["method"] == "PATCH"
    assert request["path"] == "/apis/trainer.kubeflow.org/v1alpha1/namespaces/pretraining/trainjobs/tiny"
    assert request["content_type"] == "application/apply-patch+yaml"
    assert request["query"]["fieldManager"] == [FIELD_MANAGER]
    assert request["query"]["force"] == ["False"]
    assert "dryRun" not in request["query"]
    assert yaml.safe_load(request["body"]) == TRAINJOB


def test_a_server_dry_run_should_say_so_to_the_api_server(cluster):
    cluster.apply(TRAINJOB, dry_run=True)
    assert ApiServerDouble.requests[-1]["query"]["dryRun"] == ["All"]


def test_a_conflict_should_be_reported_with_the_api_servers_words(cluster):
    taken = {**TRAINJOB, "metadata": {**TRAINJOB["metadata"], "name": "taken"}}
    with pytest.raises(ClusterError, match=r'apply TrainJob pretraining/taken: 409 Conflict: Apply failed with 1 conflict: conflict with "kueue"'):
        cluster.apply(taken)


def test_a_kind_the_cluster_does_not_serve_should_be_not_served(cluster):
    with pytest.raises(NotServed, match="does not serve ScaledObject keda.sh/v1alpha1"):
        cluster.list("keda.sh/v1alpha1", "ScaledObject", "serving")


def test_list_delete_and_logs_should_map_to_the_api(cluster):
    found = cluster.list("kueue.x-k8s.io/v1beta2", "Workload", "pretraining", "infratech.io/job=tiny")
    assert {w["metadata"]["name"] for w in found} == {w["metadata"]["name"] for w in workloads() if w["metadata"]["namespace"] == "pretraining"}
    assert ApiServerDouble.requests[-1]["query"]["labelSelector"] == ["infratech.io/job=tiny"]
    cluster.delete("trainer.kubeflow.org/v1alpha1", "TrainJob", "tiny", "pretraining")
    delete = ApiServerDouble.requests[-1]
    assert (delete["method"], delete["path"], delete["query"]["propagationPolicy"]) == ("DELETE", "/apis/trainer.kubeflow.org/v1alpha1/namespaces/pretraining/trainjobs/tiny", ["Background"])
    assert cluster.logs("tiny-node-0-0-abcde", "pretraining", tail=2) == "step 9\nstep 10\n"


def test_an_unreachable_api_server_should_be_one_clear_error(tmp_path):
    pytest.importorskip("kubernetes")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "gone", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
        "current-context": "gone",
    }))
    with pytest.raises(ClusterError, match="cannot reach the Kubernetes API server at http://127.0.0.1:9"):
        KubeCluster(context="gone", config_file=str(kubeconfig))
    with pytest.raises(ClusterError, match="no usable kubeconfig context 'missing'"):
        KubeCluster(context="missing", config_file=str(kubeconfig))


def test_rbac_refusals_should_be_forbidden_with_the_servers_words(cluster):
    with pytest.raises(Forbidden, match='list ConfigMap in serving: 403 Forbidden: configmaps is forbidden: User "researcher" cannot list'):
        cluster.list("v1", "ConfigMap", "serving")


def test_get_should_return_the_object_or_none_when_absent(cluster):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "infratech-team", "namespace": "pretraining"}, "data": {"team.yaml": "a: 1\n"}}
    api_server_double.reset({("pretraining", "configmaps", "infratech-team"): cm})
    assert cluster.get("v1", "ConfigMap", "infratech-team", "pretraining")["data"] == {"team.yaml": "a: 1\n"}
    assert ApiServerDouble.requests[-1]["path"] == "/api/v1/namespaces/pretraining/configmaps/infratech-team"
    assert cluster.get("v1", "ConfigMap", "infratech-team", "applied") is None
    api_server_double.reset(forbidden={"pretraining"})
    with pytest.raises(Forbidden, match='get ConfigMap pretraining/infratech-team: 403 Forbidden: configmaps "infratech-team" is forbidden'):
        cluster.get("v1", "ConfigMap", "infratech-team", "pretraining")
