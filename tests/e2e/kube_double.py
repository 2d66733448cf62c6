"""A test double of kube-apiserver for the e2e checks: the submit tests' double
(tests/submit/api_server_double.py: namespaced get, list, server-side apply, its errors) extended with
what the e2e reads, as kube-apiserver serves it: cluster-scoped kinds (Node,
CustomResourceDefinition, ClusterQueue) at their cluster paths, the Helm release Secrets, and the
Kueue Workload a TrainJob gets once it is applied (:data:`JOB_ENDS` says how Kueue and the job end).

The objects are recorded shapes of a healthy ovh-gra11 cluster (:func:`healthy`); a test breaks one
of them to inject a failure. What a cluster then does (scheduling, the training itself) is not
modelled: the Workload appears in the state the test names.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "submit"))

import api_server_double  # noqa: E402
from api_server_double import ApiServerDouble, status  # noqa: E402

CLUSTER_SCOPED = {"nodes", "customresourcedefinitions", "clusterqueues"}
GROUPS = {
    "apiextensions.k8s.io": ("v1", [("customresourcedefinitions", "CustomResourceDefinition")]),
    "trainer.kubeflow.org": ("v1alpha1", [("trainjobs", "TrainJob")]),
    "kueue.x-k8s.io": ("v1beta2", [("workloads", "Workload"), ("clusterqueues", "ClusterQueue")]),
}
CORE = [("pods", "Pod"), ("configmaps", "ConfigMap"), ("secrets", "Secret"), ("nodes", "Node")]

RELEASES = [("cert-manager", "cert-manager"), ("csi-s3", "kube-system"), ("gpu-operator", "gpu-operator"),
            ("jobset", "jobset-system"), ("keda", "keda"), ("kube-prometheus-stack", "monitoring"),
            ("kubeflow-trainer", "kubeflow-system"), ("kueue", "kueue-system")]
CRDS = ["certificates.cert-manager.io", "clusterissuers.cert-manager.io", "clusterqueues.kueue.x-k8s.io",
        "clustertrainingruntimes.trainer.kubeflow.org", "cohorts.kueue.x-k8s.io", "localqueues.kueue.x-k8s.io",
        "prometheusrules.monitoring.coreos.com", "resourceflavors.kueue.x-k8s.io", "workloadpriorityclasses.kueue.x-k8s.io"]
CLUSTER_QUEUES = ["applied", "pretraining"]
# ovh-gra11's pools: (pool, nodes up, GPUs allocatable per node)
NODES = [("system", 2, 0), ("l40s", 1, 1)]
JOB_ENDS = {"state": "Succeeded"}  # Succeeded, Failed, or Pending (never admitted)


def _resources(group_version, items):
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": [
        {"name": name, "singularName": "", "namespaced": name not in CLUSTER_SCOPED, "kind": kind,
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]} for name, kind in items]}


def node(pool, i, gpus, ready="True"):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": f"{pool}-{i}", "labels": {"infratech.io/pool": pool}},
            "status": {"allocatable": {"cpu": "15", "nvidia.com/gpu": str(gpus)} if gpus else {"cpu": "7"},
                       "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}]}}


def helm_secret(name, namespace, version=1, state="deployed"):
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.{name}.v{version}", "namespace": namespace,
                         "labels": {"owner": "helm", "name": name, "version": str(version), "status": state}}}


def crd(name, established="True"):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
            "status": {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": established}]}}


def cluster_queue(name, active="True"):
    cond = {"type": "Active", "status": active, "reason": "Ready" if active == "True" else "FlavorNotFound"}
    if active != "True":
        cond["message"] = "Can't admit new workloads: references missing ResourceFlavor(s): h100-80gb."
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": name},
            "status": {"conditions": [cond]}}


def healthy() -> dict:
    objects = {}
    for pool, count, gpus in NODES:
        for i in range(count):
            objects[("", "nodes", f"{pool}-{i}")] = node(pool, i, gpus)
    for name, namespace in RELEASES:
        s = helm_secret(name, namespace)
        objects[(namespace, "secrets", s["metadata"]["name"])] = s
    for name in CRDS:
        objects[("", "customresourcedefinitions", name)] = crd(name)
    for name in CLUSTER_QUEUES:
        objects[("", "clusterqueues", name)] = cluster_queue(name)
    return objects


def _workload(trainjob: dict, state: str) -> dict:
    meta = trainjob["metadata"]
    conditions = []
    wl_status: dict = {"conditions": conditions}
    if state != "Pending":
        conditions.append({"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved"})
        conditions.append({"type": "Admitted", "status": "True", "reason": "Admitted"})
        wl_status["admission"] = {"clusterQueue": meta["namespace"],
                                  "podSetAssignments": [{"name": "node", "flavors": {"nvidia.com/gpu": "h100-80gb"}}]}
        conditions.append({"type": "Finished", "status": "True", "reason": state,
                           "message": "TrainJob completed" if state == "Succeeded" else "TrainJob failed: node-0 exited 1"})
    else:
        conditions.append({"type": "QuotaReserved", "status": "False", "reason": "Pending",
                           "message": "couldn't assign flavors to pod set node: insufficient quota"})
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
            "metadata": {"name": f"trainjob-{meta['name']}-0a1b2", "namespace": meta["namespace"],
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "ownerReferences": [{"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
                                              "name": meta["name"], "controller": True, "uid": "1"}]},
            "spec": {"queueName": meta["namespace"], "podSets": [{"name": "node", "count": 1}]},
            "status": wl_status}


class KubeApiDouble(ApiServerDouble):
    def do_GET(self):
        path = urlparse(self.path).path
        if path == "/apis":
            groups = [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                       "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, (v, _) in GROUPS.items()]
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if path == "/api/v1":
            return self._send(200, _resources("v1", CORE))
        for group, (version, items) in GROUPS.items():
            if path == f"/apis/{group}/{version}":
                return self._send(200, _resources(f"{group}/{version}", items))
        parts = path.strip("/").split("/")
        resource, name = None, None
        if path.startswith("/api/v1/") and "namespaces" not in parts:
            resource, name = parts[2], parts[3] if len(parts) > 3 else None
        elif path.startswith("/apis/") and "namespaces" not in parts and len(parts) >= 4:
            resource, name = parts[3], parts[4] if len(parts) > 4 else None
        if resource in CLUSTER_SCOPED:
            self._record()
            if name:
                found = self.objects.get(("", resource, name))
                return self._send(200, found) if found else self._send(404, status(404, "NotFound", f'{resource} "{name}" not found'))
            items = [o for (ns, res, _), o in sorted(self.objects.items()) if (ns, res) == ("", resource)]
            return self._send(200, {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items})
        where = self._namespaced(path)
        if where is not None and where[2] is None:  # a list, by label selector as kube-apiserver filters it
            self._record()
            selector = parse_qs(urlparse(self.path).query).get("labelSelector", [""])[0]
            terms = [t.split("=", 1) for t in selector.split(",") if t]
            items = [o for (ns, res, _), o in sorted(self.objects.items()) if (ns, res) == where[:2]
                     and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in terms)]
            return self._send(200, {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items})
        return super().do_GET()

    def do_PATCH(self):
        super().do_PATCH()
        where = self._namespaced(urlparse(self.path).path)
        dry = "dryRun" in parse_qs(urlparse(self.path).query)
        if where is not None and where[1] == "trainjobs" and not dry:
            trainjob = self.objects[where[:3]]
            wl = _workload(trainjob, JOB_ENDS["state"])
            self.objects[(where[0], "workloads", wl["metadata"]["name"])] = wl


def reset(objects=None, job_ends="Succeeded"):
    api_server_double.reset(copy.deepcopy(objects if objects is not None else healthy()))
    JOB_ENDS["state"] = job_ends


def start():
    from http.server import ThreadingHTTPServer
    import threading

    server = ThreadingHTTPServer(("127.0.0.1", 0), KubeApiDouble)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


kubeconfig = api_server_double.kubeconfig
requests = ApiServerDouble.requests
