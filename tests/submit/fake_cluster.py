"""A cluster for the submit tests: objects in memory, what is applied and deleted recorded. It
stands where infratech.cli.submit.cluster.KubeCluster stands (get, list, delete, logs, apply)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import yaml

from infratech.cli.submit.cluster import Forbidden, NotServed

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def workloads() -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((FIXTURES / "workloads").glob("*.yaml"))]


def _matches(obj: dict, selector: Optional[str]) -> bool:
    if not selector:
        return True
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in (term.split("=", 1) for term in selector.split(",")))


class FakeCluster:
    def __init__(self, objects=(), served=None, logs=None, forbidden=()):
        self.objects = [copy.deepcopy(o) for o in objects]
        self.served = served  # None: every kind; else the kinds this cluster has
        self.forbidden = set(forbidden)  # kinds this identity may not list (RBAC)
        self.applied: list[tuple[dict, bool]] = []
        self.deleted: list[tuple[str, str, str]] = []
        self._logs = logs or {}

    def _check(self, kind: str) -> None:
        if self.served is not None and kind not in self.served:
            raise NotServed(f"the cluster does not serve {kind}")
        if kind in self.forbidden:
            raise Forbidden(f"list {kind}: 403 Forbidden")

    def get(self, api_version, kind, name, namespace):
        self._check(kind)
        found = [o for o in self.list(api_version, kind, namespace) if o["metadata"]["name"] == name]
        return found[0] if found else None

    def list(self, api_version, kind, namespace, selector=None):
        self._check(kind)
        return [
            copy.deepcopy(o)
            for o in self.objects
            if o["apiVersion"] == api_version and o["kind"] == kind and o["metadata"].get("namespace") == namespace and _matches(o, selector)
        ]

    def delete(self, api_version, kind, name, namespace):
        self.deleted.append((kind, namespace, name))
        self.objects = [o for o in self.objects if (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) != (kind, name, namespace)]

    def logs(self, pod, namespace, container=None, tail=None):
        text = self._logs.get(pod, f"log of {pod}\n")
        return "\n".join(text.splitlines()[-tail:]) + "\n" if tail else text

    def apply(self, obj, dry_run=False):
        self.applied.append((copy.deepcopy(obj), dry_run))
        return obj
