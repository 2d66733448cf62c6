"""The only code that talks to a Kubernetes API server: a thin adapter over the ``kubernetes``
Python client's dynamic client. Everything else (what to apply, how to read a Kueue Workload)
works on plain dicts and is tested without a cluster; this file is not (no API server runs in
the test environment, see docs/testing.md).

* ``apply``: server-side apply (``application/apply-patch+yaml``) of each object, field manager
  ``infratech-submit``, conflicts not forced: a field another manager owns (Kueue's
  ``spec.suspend`` once it admitted the job) is an error to read, not to overwrite;
* ``get`` of one object (None when absent); ``list``/``delete`` of any kind by label selector; ``logs`` of a pod.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

FIELD_MANAGER = "infratech-submit"


class ClusterError(Exception):
    """The API server refused or could not be reached; its message is what the user needs."""


class NotServed(ClusterError):
    """The cluster has no such kind (its CRD, hence its operator, is not installed)."""


class Forbidden(ClusterError):
    """The API server says this identity may not do that (RBAC)."""


class NotFound(ClusterError):
    """The API server has no such object (404)."""


class KubeCluster:
    def __init__(self, context: Optional[str] = None, config_file: Optional[str] = None):
        try:
            from kubernetes import config
            from kubernetes.client import ApiClient, CoreV1Api
            from kubernetes.dynamic import DynamicClient
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise ClusterError(f"the kubernetes Python client is not installed ({exc})") from None
        try:
            # $KUBECONFIG as it is now (the client reads it once, when first imported)
            config.load_kube_config(config_file=config_file or os.environ.get("KUBECONFIG"), context=context)
        except Exception as exc:  # noqa: BLE001 - no kubeconfig, unknown context: say which
            try:
                config.load_incluster_config()
            except Exception:  # noqa: BLE001
                raise ClusterError(f"no usable kubeconfig{f' context {context!r}' if context else ''}: {exc}") from None
        api = ApiClient()
        try:
            self._dynamic = DynamicClient(api)  # reads the API server's discovery documents
        except Exception as exc:  # noqa: BLE001 - connection refused, TLS, auth: say so in one line
            raise ClusterError(f"cannot reach the Kubernetes API server at {api.configuration.host}: {exc}") from None
        self._core = CoreV1Api(api)

    def _resource(self, api_version: str, kind: str):
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self._dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise NotServed(f"the cluster does not serve {kind} {api_version} (is its operator installed?)") from None

    def _call(self, what: str, fn, *args, **kwargs):
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            error = {403: Forbidden, 404: NotFound}.get(exc.status, ClusterError)
            raise error(f"{what}: {exc.status} {exc.reason}: {_api_message(exc)}") from None

    def apply(self, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        meta = obj["metadata"]
        resource = self._resource(obj["apiVersion"], obj["kind"])
        kwargs = {"field_manager": FIELD_MANAGER, "force_conflicts": False}
        if dry_run:
            kwargs["dry_run"] = "All"
        result = self._call(
            f"apply {obj['kind']} {meta.get('namespace', '')}/{meta['name']}",
            self._dynamic.server_side_apply,
            resource,
            body=obj,
            name=meta["name"],
            namespace=meta.get("namespace"),
            **kwargs,
        )
        return result.to_dict()

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> Optional[dict[str, Any]]:
        """One object, or None where the API server answers 404 (no such object or namespace)."""
        resource = self._resource(api_version, kind)
        try:
            return self._call(f"get {kind} {namespace}/{name}", self._dynamic.get, resource, name=name, namespace=namespace).to_dict()
        except NotFound:
            return None

    def list(self, api_version: str, kind: str, namespace: str, selector: Optional[str] = None) -> list[dict[str, Any]]:
        resource = self._resource(api_version, kind)
        result = self._call(f"list {kind} in {namespace}", self._dynamic.get, resource, namespace=namespace, label_selector=selector)
        return [item.to_dict() for item in result.items]

    def delete(self, api_version: str, kind: str, name: str, namespace: str) -> None:
        resource = self._resource(api_version, kind)
        self._call(
            f"delete {kind} {namespace}/{name}", self._dynamic.delete, resource, name=name, namespace=namespace, propagation_policy="Background"
        )

    def token(self, service_account: str, namespace: str, seconds: int) -> tuple[str, str]:
        """A TokenRequest for ``service_account``: (token, expiry as RFC 3339). The API server may
        shorten the duration (--service-account-max-token-expiration); the expiry it returns is the truth."""
        from kubernetes.client import AuthenticationV1TokenRequest, V1TokenRequestSpec

        body = AuthenticationV1TokenRequest(spec=V1TokenRequestSpec(audiences=[], expiration_seconds=seconds))
        answer = self._call(
            f"token for ServiceAccount {namespace}/{service_account}",
            self._core.create_namespaced_service_account_token,
            service_account,
            namespace,
            body,
            _preload_content=False,
        )
        status = json.loads(answer.data)["status"]
        return status["token"], status["expirationTimestamp"]

    def logs(self, pod: str, namespace: str, container: Optional[str] = None, tail: Optional[int] = None) -> str:
        # the raw response: the client's own decoding of a log turns it into the repr of bytes
        response = self._call(
            f"logs of {namespace}/{pod}",
            self._core.read_namespaced_pod_log,
            name=pod,
            namespace=namespace,
            container=container,
            tail_lines=tail,
            _preload_content=False,
        )
        return response.data.decode("utf-8", errors="replace")


def _api_message(exc) -> str:
    import json

    try:
        return json.loads(exc.body).get("message", exc.body)
    except Exception:  # noqa: BLE001 - not JSON: the body as it came
        return str(exc.body)
