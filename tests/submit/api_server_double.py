"""A test double of kube-apiserver: a small HTTP server that answers the requests the CLI makes as
kube-apiserver does (discovery, get, list, server-side apply, delete, logs, create, TokenRequest,
its errors) and records each request. No real API server can run here (docs/testing.md): this checks
what goes on the wire and what the CLI makes of the answers, not what a cluster then does.

State it serves, set by each test through :func:`reset`:

* ``objects``: ``(namespace, resource, name) -> object`` answered to GET and listed (the team
  descriptions: ConfigMaps ``infratech-team``), and where POSTs create objects;
* ``forbidden``: namespaces where the identity may do nothing (RBAC: a 403 with the server's words).

It refuses what the real one refuses on the paths the CLI uses: a second object of the same name
(409 AlreadyExists), a TokenRequest for a ServiceAccount that does not exist (404) or shorter than
10 minutes (422, ``spec.expirationSeconds: Invalid value: may not specify a duration less than 10
minutes``, pkg/apis/authentication/validation of kubernetes v1.34).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import yaml

from fake_cluster import workloads

GROUPS = {
    "trainer.kubeflow.org": ("v1alpha1", [("trainjobs", "TrainJob")]),
    "kueue.x-k8s.io": ("v1beta2", [("workloads", "Workload")]),
    "rbac.authorization.k8s.io": ("v1", [("rolebindings", "RoleBinding"), ("roles", "Role")]),
}
CORE = [("pods", "Pod"), ("pods/log", "Pod"), ("configmaps", "ConfigMap"), ("serviceaccounts", "ServiceAccount"), ("serviceaccounts/token", "TokenRequest")]
IDENTITY = "researcher"
ISSUED_TOKEN = "issued-service-account-token"


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


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": reason, "code": code, "message": message}


class ApiServerDouble(BaseHTTPRequestHandler):
    requests: list = []
    objects: dict = {}
    forbidden: set = set()

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

    def _namespaced(self, path):
        """(namespace, resource, name, subresource) of a namespaced path, else None."""
        parts = path.strip("/").split("/")
        if "namespaces" not in parts:
            return None
        i = parts.index("namespaces")
        rest = parts[i + 1:]
        if len(rest) < 2:
            return None
        return rest[0], rest[1], rest[2] if len(rest) > 2 else None, rest[3] if len(rest) > 3 else None

    def _refused(self, where, verb):
        namespace, resource, name, _ = where
        if namespace not in self.forbidden:
            return False
        what = f'{resource} "{name}"' if name else resource
        self._send(403, status(403, "Forbidden", f'{what} is forbidden: User "{IDENTITY}" cannot {verb} resource "{resource}" in API group "" in the namespace "{namespace}"'))
        return True

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
        where = self._namespaced(path)
        if where is not None and self._refused(where, "get" if where[2] else "list"):
            return None
        if path == "/apis/kueue.x-k8s.io/v1beta2/namespaces/pretraining/workloads":
            items = [w for w in workloads() if w["metadata"]["namespace"] == "pretraining"]
            return self._send(200, {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "WorkloadList", "metadata": {}, "items": items})
        if path == "/api/v1/namespaces/serving/configmaps":
            return self._send(403, status(403, "Forbidden", f'configmaps is forbidden: User "{IDENTITY}" cannot list resource "configmaps" in the namespace "serving"'))
        if path.endswith("/log"):
            tail = int(entry["query"].get("tailLines", ["0"])[0])
            lines = [f"step {i}" for i in range(1, 11)]
            return self._send(200, "\n".join(lines[-tail:] if tail else lines) + "\n", "text/plain")
        if where is not None and where[2] is not None and where[3] is None:
            found = self.objects.get(where[:3])
            if found is not None:
                return self._send(200, found)
            return self._send(404, status(404, "NotFound", f'{where[1]} "{where[2]}" not found'))
        if where is not None and where[2] is None:
            items = [o for (ns, res, _), o in sorted(self.objects.items()) if (ns, res) == where[:2]]
            return self._send(200, {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items})
        return self._send(404, status(404, "NotFound", f"{path} not found"))

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self._record(body)
        obj = json.loads(body)
        where = self._namespaced(urlparse(self.path).path)
        if where is None:
            return self._send(404, status(404, "NotFound", f"{self.path} not found"))
        if self._refused(where, "create"):
            return None
        namespace, resource, name, sub = where
        if sub == "token":
            if (namespace, "serviceaccounts", name) not in self.objects:
                return self._send(404, status(404, "NotFound", f'serviceaccounts "{name}" not found'))
            seconds = int((obj.get("spec") or {}).get("expirationSeconds") or 3600)
            if seconds < 600:
                return self._send(422, status(422, "Invalid", f"TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less than 10 minutes"))
            expires = (datetime.now(timezone.utc) + timedelta(seconds=seconds)).replace(microsecond=0)
            answer = {**obj, "status": {"token": ISSUED_TOKEN, "expirationTimestamp": expires.isoformat().replace("+00:00", "Z")}}
            return self._send(201, answer)
        key = (namespace, resource, obj["metadata"]["name"])
        if key in self.objects:
            return self._send(409, status(409, "AlreadyExists", f'{resource} "{key[2]}" already exists'))
        obj["metadata"]["namespace"] = namespace
        self.objects[key] = obj
        return self._send(201, obj)

    def do_PATCH(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self._record(body)
        obj = yaml.safe_load(body)
        if obj["metadata"]["name"] == "taken":
            return self._send(409, status(409, "Conflict", 'Apply failed with 1 conflict: conflict with "kueue" using trainer.kubeflow.org/v1alpha1: .spec.suspend'))
        where = self._namespaced(urlparse(self.path).path)
        if where is not None and self._refused(where, "patch"):
            return None
        if where is not None and where[2] and "dryRun" not in parse_qs(urlparse(self.path).query):
            self.objects[where[:3]] = obj  # server-side apply creates what is not there
        return self._send(200, obj)

    def do_DELETE(self):
        self._record()
        return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


def reset(objects=None, forbidden=()):
    ApiServerDouble.requests.clear()
    ApiServerDouble.objects = dict(objects or {})
    ApiServerDouble.forbidden = set(forbidden)


def start():
    """Serve on a free local port; (url, server) — call ``server.shutdown()`` when done."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), ApiServerDouble)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def kubeconfig(server_url, path, user=IDENTITY, token="t0ken", context="fake"):
    """A kubeconfig for the double, written at ``path``."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server_url}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "current-context": context,
    }))
    return path
