"""The e2e checks that read the cluster, through the submit commands' API-server adapter
(:class:`infratech.cli.submit.cluster.KubeCluster`: get and list of any kind). What is expected
comes from the offline plan (releases, custom resources, ClusterQueues) and the stack's pools.

Each check returns ``(ok, evidence)``; the phases poll the ones that converge (nodes, queues, the
job) until their deadline."""

from __future__ import annotations

from typing import Iterable, Optional

from ...program.providers.common import LABEL_POOL
from ..plan.runtime import Recording
from ..submit import jobs as _jobs
from ..submit.cluster import ClusterError

GPU = "nvidia.com/gpu"
RELEASE = "kubernetes:helm.sh/v3:Release"
CRD_API = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
CLUSTER_QUEUE = ("kueue.x-k8s.io/v1beta2", "ClusterQueue")
BUILT_IN_GROUPS = {"core", "apps", "batch", "policy", "helm.sh", "rbac.authorization.k8s.io", "networking.k8s.io",
                   "storage.k8s.io", "admissionregistration.k8s.io", "scheduling.k8s.io", "autoscaling", "yaml"}


def _conditions(obj: dict) -> dict[str, dict]:
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}


def _true(obj: dict, kind: str) -> bool:
    return _conditions(obj).get(kind, {}).get("status") == "True"


# -- what the plan expects ---------------------------------------------------------------------
def releases(rec: Recording) -> list[tuple[str, str]]:
    """(name, namespace) of each Helm release the plan declares."""
    return sorted((r.inputs.get("name") or r.name, r.inputs.get("namespace") or "default") for r in rec.by_type(RELEASE))


def _plural(kind: str) -> str:
    lower = kind.lower()
    return lower + ("es" if lower.endswith(("s", "x", "sh", "ch")) else "s")


def crds(rec: Recording) -> list[str]:
    """The CRD names (``plural.group``) of the custom resources the plan declares."""
    names = set()
    for r in rec.resources:
        parts = r.type.split(":")
        if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
            continue
        group = parts[1].split("/", 1)[0]
        if group in BUILT_IN_GROUPS or "." not in group:
            continue
        names.add(f"{_plural(parts[2])}.{group}")
    return sorted(names)


def cluster_queues(rec: Recording) -> list[str]:
    return sorted((r.inputs.get("metadata") or {}).get("name") or r.name
                  for r in rec.by_type("kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue"))


# -- checks -------------------------------------------------------------------------------------
def nodes_ready(cluster, pools: Iterable[tuple[str, int, int]]) -> tuple[bool, str]:
    """``pools``: (name, min nodes, GPUs per node). Each pool has at least its min nodes Ready,
    each of them with its GPUs allocatable (a GPU node whose device plugin is not up has none)."""
    nodes = cluster.list("v1", "Node", None)
    ok, words = True, []
    for name, wanted, gpus in pools:
        mine = [n for n in nodes if ((n.get("metadata") or {}).get("labels") or {}).get(LABEL_POOL) == name]
        good = [n for n in mine if _true(n, "Ready")
                and int(str(((n.get("status") or {}).get("allocatable") or {}).get(GPU, 0))) >= gpus]
        ok = ok and len(good) >= wanted
        words.append(f"pool {name}: {len(good)}/{len(mine)} node(s) Ready with {gpus} GPU(s) allocatable, "
                     f"at least {wanted} wanted")
    return ok, "; ".join(words) or "no pool"


def release_deployed(cluster, name: str, namespace: str) -> tuple[bool, str]:
    """Helm 3 keeps each revision as a Secret labelled owner=helm, name, version, status."""
    found = cluster.list("v1", "Secret", namespace, f"owner=helm,name={name}")
    if not found:
        return False, f"{name} in {namespace}: no Helm release"
    latest = max(found, key=lambda s: int((s["metadata"].get("labels") or {}).get("version", "0")))
    labels = latest["metadata"].get("labels") or {}
    return labels.get("status") == "deployed", f"{name} in {namespace}: revision {labels.get('version')} {labels.get('status')}"


def crd_established(cluster, name: str) -> tuple[bool, str]:
    crd = cluster.get(*CRD_API, name, None)
    if crd is None:
        return False, f"{name}: absent"
    return _true(crd, "Established"), f"{name}: Established={_conditions(crd).get('Established', {}).get('status', 'unknown')}"


def queue_active(cluster, name: str) -> tuple[bool, str]:
    cq = cluster.get(*CLUSTER_QUEUE, name, None)
    if cq is None:
        return False, f"ClusterQueue {name}: absent"
    active = _conditions(cq).get("Active", {})
    why = active.get("message") or active.get("reason") or ""
    return _true(cq, "Active"), f"ClusterQueue {name}: Active={active.get('status', 'unknown')}{f' ({why})' if why else ''}"


def job_state(cluster, namespace: str, job: str) -> tuple[Optional[_jobs.JobStatus], str]:
    """The job as `infratech jobs status` reads it (its Kueue Workload)."""
    status = _jobs.find(cluster, namespace, job)
    if status is None:
        return None, f"{job} in {namespace}: no Kueue Workload yet"
    where = f" on ClusterQueue {status.cluster_queue}" if status.cluster_queue else ""
    flavors = f", flavours {', '.join(status.flavors)}" if status.flavors else ""
    return status, f"{job} in {namespace}: {status.state}{where}{flavors} ({status.reason})"


def all_of(results: list[tuple[bool, str]]) -> tuple[bool, str]:
    return all(ok for ok, _ in results), "; ".join(words for _, words in results) or "nothing expected"


__all__ = ["ClusterError", "all_of", "cluster_queues", "crd_established", "crds", "job_state", "nodes_ready",
           "queue_active", "release_deployed", "releases"]
