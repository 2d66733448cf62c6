"""The rules about credentials in plain text: in resources (Secrets, the Kubernetes provider's
kubeconfig, chart values, environment entries) and in stack outputs. Registered in :mod:`.rules`."""

from __future__ import annotations

import re
from typing import Any, Iterator

from .model import COMPUTED, SECRET, Resource, Settings, Stack, walk

# chart values that name where a credential is, not the credential (grafana.admin.passwordKey)
REFERENCE_KEYS = frozenset({"existingSecret", "userKey", "passwordKey", "secretKeyRef", "privateKeySecretRef"})
_SECRETISH = re.compile(r"(secret|password|passwd|token|accesskey|access_key|privatekey|private_key|apikey|api_key)", re.IGNORECASE)


def secret_outputs(stack: Stack) -> list[str]:
    problems = []
    for path, value in walk(stack.outputs):
        leaf = path.rsplit(".", 1)[-1]
        if (leaf == "kubeconfig" or _SECRETISH.search(leaf)) and value not in (SECRET, COMPUTED, None):
            problems.append(f"stack output {path} is in plain text; export it as a Pulumi secret")
    return problems


def secrets_as_secrets(res: Resource, settings: Settings) -> list[str]:
    problems = []
    if res.type == "kubernetes:core/v1:Secret":
        for key in ("data", "stringData"):
            value = res.props.get(key)
            if value not in (None, SECRET) and any(v not in (SECRET, COMPUTED) for _, v in walk(value)):
                problems.append(f"{res.label()}: {key} holds plain values; build it from Pulumi secrets")
    elif res.type == "pulumi:providers:kubernetes":
        if res.props.get("kubeconfig") not in (None, SECRET, COMPUTED):
            problems.append(f"{res.label()}: kubeconfig passed in plain text")
    elif res.type == "kubernetes:helm.sh/v3:Release":
        for path, value in walk(res.props.get("values") or {}):
            leaf = path.rsplit(".", 1)[-1]
            if (
                _SECRETISH.search(leaf)
                and leaf not in REFERENCE_KEYS
                and not leaf.endswith(("Name", "Ref"))
                and isinstance(value, str)
                and value not in ("", SECRET, COMPUTED)
            ):
                problems.append(f"{res.label()}: values.{path} is a credential in plain text")
    if res.package == "kubernetes" and res.type != "kubernetes:core/v1:Secret":
        where = "values." if res.type == "kubernetes:helm.sh/v3:Release" else ""
        for path, name, value in _env_values(res.props.get("values") if where else res.props):
            problems.append(f"{res.label()}: {where}{path} sets {name} in plain text; take it from a Secret (valueFrom.secretKeyRef)")
    return problems


def _env_values(value: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """Environment entries (``{name, value}``, the Kubernetes EnvVar shape charts copy into their
    ``env`` values) whose name says credential and whose value is written out."""
    if isinstance(value, dict):
        name, plain = value.get("name"), value.get("value")
        if (isinstance(name, str) and _SECRETISH.search(name.replace("_", "")) and isinstance(plain, str)
                and plain not in ("", SECRET, COMPUTED)):
            yield f"{path}.value", name, plain
        for k, v in value.items():
            yield from _env_values(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _env_values(v, f"{path}[{i}]")
