"""infratech/cli/submit/cluster.py, the one module that talks to an API server, driven through the
real `kubernetes` client against a small HTTP server that answers as kube-apiserver does
(discovery, server-side apply, list, delete, logs, errors) and records each request. No real API
server can run here: this checks what goes on the wire, not what a cluster then does."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from fake_cluster import workloads

from infratech.cli.submit.cluster import (
    FIELD_MANAGER,
    ClusterError,
    Forbidden,
    KubeCluster,
    NotServed,
)

GROUPS = {
    "trainer.kubeflow.org": ("v1alpha1", [("trainjobs", "TrainJob")]),
    "kueue.x-k8s.io": ("v1beta2", [("workloads", "Workload")]),
}
CORE = [("pods", "Pod"), ("pods/log", "Pod"), ("configmaps", "ConfigMap")]


def _resources(group_version, items):
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {"name": name, "singularName": "", "namespaced": True, "kind": kind, "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
            for name, kind in items
        ],
    }


class FakeApiServer(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body=None):
        url = urlparse(self.path)
        entry = {"method": self.command, "path": url.path, "query": parse_qs(url.query), "content_type": self.headers.get("Content-Type"), "body": body}
        type(self).requests.append(entry)
        return entry

    def do_GET(self):
        url = urlparse(self.path)
        path = url.path
        if path == "/version":
            return self._send(200, {"major": "1", "minor": "34", "gitVersion": "v1.34.1"})
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "/apis":
            groups = [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}], "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                for g, (v, _) in GROUPS.items()
            ]
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if path == "/api/v1":
            return self._send(200, _resources("v1", CORE))
        for group, (version, items) in GROUPS.items():
            if path == f"/apis/{group}/{version}":
                return self._send(200, _resources(f"{group}/{version}", items))
        entry = self._record()
        if path == "/apis/kueue.x-k8s.io/v1beta2/namespaces/pretraining/workloads":
            items = [w for w in workloads() if w["metadata"]["namespace"] == "pretraining"]
            return self._send(200, {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "WorkloadList", "metadata": {}, "items": items})
        if path == "/api/v1/namespaces/serving/configmaps":
            return self._send(403, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                                    "message": 'configmaps is forbidden: User "researcher" cannot list resource "configmaps" in the namespace "serving"'})
        if path.endswith("/log"):
            tail = int(entry["query"].get("tailLines", ["0"])[0])
            lines = [f"step {i}" for i in range(1, 11)]
            return self._send(200, "\n".join(lines[-tail:] if tail else lines) + "\n", "text/plain")
        return self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": f"{path} not found", "reason": "NotFound", "code": 404})

    def do_PATCH(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self._record(body)
        obj = yaml.safe_load(body)
        if obj["metadata"]["name"] == "taken":
            return self._send(409, {
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409,
                "message": 'Apply failed with 1 conflict: conflict with "kueue" using trainer.kubeflow.org/v1alpha1: .spec.suspend',
            })
        return self._send(200, obj)

    def do_DELETE(self):
        self._record()
        return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


@pytest.fixture(scope="module")
def api_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def cluster(api_server, tmp_path, monkeypatch):
    pytest.importorskip("kubernetes")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the dynamic client's discovery cache goes there
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": api_server}}],
        "users": [{"name": "researcher", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "researcher"}}],
        "current-context": "fake",
    }))
    FakeApiServer.requests.clear()
    return KubeCluster(context="fake", config_file=str(kubeconfig))


TRAINJOB = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "TrainJob",
    "metadata": {"name": "tiny", "namespace": "pretraining", "labels": {"kueue.x-k8s.io/queue-name": "pretraining"}},
    "spec": {"suspend": True, "runtimeRef": {"name": "torch-distributed-infratech"}},
}


def test_apply_should_be_a_server_side_apply_by_infratech_submit_without_forcing(cluster):
    assert cluster.apply(TRAINJOB)["metadata"]["name"] == "tiny"
    (request,) = FakeApiServer.requests
    assert request["method"] == "PATCH"
    assert request["path"] == "/apis/trainer.kubeflow.org/v1alpha1/namespaces/pretraining/trainjobs/tiny"
    assert request["content_type"] == "application/apply-patch+yaml"
    assert request["query"]["fieldManager"] == [FIELD_MANAGER]
    assert request["query"]["force"] == ["False"]
    assert "dryRun" not in request["query"]
    assert yaml.safe_load(request["body"]) == TRAINJOB


def test_a_server_dry_run_should_say_so_to_the_api_server(cluster):
    cluster.apply(TRAINJOB, dry_run=True)
    assert FakeApiServer.requests[-1]["query"]["dryRun"] == ["All"]


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
    assert FakeApiServer.requests[-1]["query"]["labelSelector"] == ["infratech.io/job=tiny"]
    cluster.delete("trainer.kubeflow.org/v1alpha1", "TrainJob", "tiny", "pretraining")
    delete = FakeApiServer.requests[-1]
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
