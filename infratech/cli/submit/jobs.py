"""``infratech jobs``: what Kueue says about a team's jobs, their pods and logs, and cancelling.

Kueue keeps one Workload per job (owner: the TrainJob or Job). Its conditions say where the job
is (kueue.x-k8s.io/v1beta2, apis/kueue/v1beta2/workload_types.go):

* ``Finished`` True: done, reason ``Succeeded`` or ``Failed`` (the message says why);
* ``Admitted`` True: quota reserved and admission checks passed, the job runs (``PodsReady`` says
  whether all its pods are up; with waitForPodsReady a job whose pods do not all start in time is
  evicted with ``PodsReadyTimeout`` and requeued);
* ``Evicted`` True: taken back, reason ``Preempted`` (with a ``Preempted`` condition whose reason
  is ``InClusterQueue``, ``InCohortReclamation``, ``InCohortFairSharing`` or
  ``InCohortReclaimWhileBorrowing``), ``PodsReadyTimeout``, ``Deactivated``…; ``Requeued`` says
  whether it waits again;
* ``QuotaReserved`` False: pending, reason ``Pending`` with Kueue's message (``couldn't assign
  flavors to pod set node: insufficient unused quota for nvidia.com/gpu in flavor h100-80gb, 2
  more needed``), or ``Inadmissible`` (no such LocalQueue, queue stopped or inactive).

The functions below read those objects as plain dicts; only :class:`.cluster.KubeCluster` talks
to an API server, so everything here is tested on recorded Workload objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Optional, Protocol

WORKLOAD_API = "kueue.x-k8s.io/v1beta2"
JOB_LABEL = "infratech.io/job"
GPU = "nvidia.com/gpu"
PREEMPTION_WORDS = {
    "InClusterQueue": "by a higher-priority job of the same team",
    "InCohortReclamation": "its team borrowed GPUs that their owner took back",
    "InCohortFairSharing": "fair sharing gave the GPUs to another team",
    "InCohortReclaimWhileBorrowing": "another team, itself borrowing, reclaimed GPUs",
}
# what a submission may have created, by chart: deleted by `jobs cancel`
RELEASE_KINDS = (
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"),
    ("batch/v1", "Job"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("v1", "ConfigMap"),
)


class Cluster(Protocol):
    def list(self, api_version: str, kind: str, namespace: str, selector: Optional[str] = None) -> list[dict]: ...

    def delete(self, api_version: str, kind: str, name: str, namespace: str) -> None: ...

    def logs(self, pod: str, namespace: str, container: Optional[str] = None, tail: Optional[int] = None) -> str: ...


@dataclass(frozen=True)
class JobStatus:
    job: str  # the TrainJob's or Job's name (the release name)
    kind: str  # TrainJob, Job
    workload: str
    queue: str
    state: str  # Pending, Inadmissible, QuotaReserved, Admitted, Running, Preempted, Evicted, Succeeded, Failed, Deactivated
    reason: str  # in words: why it waits, why it was taken back, how it ended
    gpus: int  # GPUs the job asks for, all pods together
    flavors: tuple[str, ...] = ()  # the flavours (GPU models) it was admitted on
    cluster_queue: str = ""
    created: str = ""
    requeues: int = 0
    evictions: dict[str, int] = field(default_factory=dict)


def _conditions(wl: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (wl.get("status") or {}).get("conditions") or []}


def _true(conds: dict[str, dict], kind: str) -> bool:
    return conds.get(kind, {}).get("status") == "True"


def _owner(wl: dict) -> tuple[str, str]:
    for ref in wl["metadata"].get("ownerReferences") or []:
        if ref.get("controller", True):
            return ref["kind"], ref["name"]
    labels = wl["metadata"].get("labels") or {}
    return "", labels.get(JOB_LABEL, wl["metadata"]["name"])


def _gpus(wl: dict) -> int:
    total = 0
    for podset in (wl.get("spec") or {}).get("podSets") or []:
        count = int(podset.get("count", 1))
        spec = (podset.get("template") or {}).get("spec") or {}
        per_pod = 0
        for c in spec.get("containers") or []:
            res = c.get("resources") or {}
            value = (res.get("limits") or {}).get(GPU, (res.get("requests") or {}).get(GPU, 0))
            per_pod += int(str(value))
        total += count * per_pod
    return total


def _flavors(wl: dict) -> tuple[str, ...]:
    admission = (wl.get("status") or {}).get("admission") or {}
    found: list[str] = []
    for psa in admission.get("podSetAssignments") or []:
        for flavor in (psa.get("flavors") or {}).values():
            if flavor not in found:
                found.append(flavor)
    return tuple(found)


def status(wl: dict) -> JobStatus:
    """Where a Workload's job stands, in words."""
    conds = _conditions(wl)
    st = wl.get("status") or {}
    kind, job = _owner(wl)

    def message(kind: str) -> str:
        return (conds.get(kind, {}).get("message") or "").strip()

    if _true(conds, "Finished"):
        reason = conds["Finished"].get("reason", "")
        state = "Failed" if reason == "Failed" else "Succeeded"
        text = message("Finished") or reason
    elif (wl.get("spec") or {}).get("active") is False:
        state, text = "Deactivated", message("Evicted") or "spec.active is false: Kueue will not admit it (kubectl patch … active=true to resume)"
    elif _true(conds, "Admitted"):
        if _true(conds, "PodsReady"):
            state, text = "Running", "admitted, every pod ready"
        else:
            waiting = message("PodsReady") or "waiting for the pods to start"
            state, text = "Admitted", f"admitted, {waiting[0].lower() + waiting[1:]}"
    elif _true(conds, "Evicted"):
        evicted = conds["Evicted"]
        if evicted.get("reason") == "Preempted":
            why = conds.get("Preempted", {}).get("reason", "")
            state = "Preempted"
            text = f"preempted: {PREEMPTION_WORDS.get(why, why or 'preempted')}"
            detail = message("Preempted") or message("Evicted")
            if detail:
                text += f" ({detail})"
        else:
            state = "Evicted"
            text = f"evicted ({evicted.get('reason', '')}): {message('Evicted')}".rstrip(": ")
        if _true(conds, "Requeued"):
            pending = message("QuotaReserved")
            text += "; requeued" + (f", pending: {pending}" if pending else "")
        elif "Requeued" in conds:
            requeue_at = (st.get("requeueState") or {}).get("requeueAt")
            text += f"; back in the queue at {requeue_at}" if requeue_at else "; waiting to be requeued"
    elif _true(conds, "QuotaReserved"):
        state, text = "QuotaReserved", "quota reserved, waiting for admission checks"
    elif conds.get("QuotaReserved", {}).get("reason") == "Inadmissible":
        state, text = "Inadmissible", message("QuotaReserved") or "the LocalQueue or its ClusterQueue is missing or inactive"
    else:
        state = "Pending"
        text = message("QuotaReserved") or "not yet considered by Kueue"
    evictions = {
        e.get("reason", "?"): int(e.get("count", 0)) for e in ((st.get("schedulingStats") or {}).get("evictions") or [])
    }
    return JobStatus(
        job=job,
        kind=kind,
        workload=wl["metadata"]["name"],
        queue=(wl.get("spec") or {}).get("queueName", ""),
        state=state,
        reason=text,
        gpus=_gpus(wl),
        flavors=_flavors(wl),
        cluster_queue=(st.get("admission") or {}).get("clusterQueue", ""),
        created=wl["metadata"].get("creationTimestamp", ""),
        requeues=int((st.get("requeueState") or {}).get("count", 0)),
        evictions=evictions,
    )


def age(timestamp: str, now: Optional[datetime] = None) -> str:
    if not timestamp:
        return "-"
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = int(((now or datetime.now(timezone.utc)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def table(statuses: Iterable[JobStatus], now: Optional[datetime] = None) -> str:
    """``jobs list``: one line per job, oldest first."""
    rows = [("JOB", "KIND", "QUEUE", "STATE", "GPUS", "FLAVOR", "AGE", "WHY")]
    for s in sorted(statuses, key=lambda s: (s.created, s.job)):
        rows.append((s.job, s.kind or "-", s.queue, s.state, str(s.gpus), ",".join(s.flavors) or "-", age(s.created, now), s.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)


def list_jobs(cluster: Cluster, namespace: str) -> list[JobStatus]:
    return [status(wl) for wl in cluster.list(WORKLOAD_API, "Workload", namespace)]


def find(cluster: Cluster, namespace: str, job: str) -> Optional[JobStatus]:
    matches = [s for s in list_jobs(cluster, namespace) if s.job == job]
    return max(matches, key=lambda s: s.created) if matches else None


def pods(cluster: Cluster, namespace: str, job: str) -> list[dict]:
    return sorted(cluster.list("v1", "Pod", namespace, f"{JOB_LABEL}={job}"), key=lambda p: p["metadata"]["name"])


def pod_line(pod: dict) -> str:
    st = pod.get("status") or {}
    statuses = st.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    waiting = [c["state"]["waiting"].get("reason", "") for c in statuses if (c.get("state") or {}).get("waiting")]
    phase = waiting[0] if waiting else st.get("phase", "?")
    node = (pod.get("spec") or {}).get("nodeName") or "-"
    return f"{pod['metadata']['name']}  {phase}  ready {ready}/{len(statuses) or '?'}  restarts {restarts}  node {node}"


def describe(cluster: Cluster, namespace: str, job: str) -> str:
    """``jobs status``: the job's Workload in words, then its pods."""
    s = find(cluster, namespace, job)
    lines = []
    if s is None:
        served = cluster.list("apps/v1", "Deployment", namespace, f"{JOB_LABEL}={job}")
        if not served:
            return f"no job {job!r} in namespace {namespace} (no Kueue Workload, no Deployment)"
        for d in served:
            st = d.get("status") or {}
            lines.append(f"{d['metadata']['name']}: Deployment, {st.get('readyReplicas', 0)}/{st.get('replicas', 0)} replicas ready (served, not queued)")
    else:
        lines += [
            f"job:       {s.job} ({s.kind or 'unknown kind'}), Workload {s.workload}",
            f"queue:     {s.queue}" + (f" -> ClusterQueue {s.cluster_queue}" if s.cluster_queue else ""),
            f"state:     {s.state}: {s.reason}",
            f"gpus:      {s.gpus}" + (f" on {', '.join(s.flavors)}" if s.flavors else ""),
        ]
        if s.requeues or s.evictions:
            ev = ", ".join(f"{k} x{v}" for k, v in sorted(s.evictions.items())) or "none recorded"
            lines.append(f"history:   requeued {s.requeues} time(s); evictions: {ev}")
    found = pods(cluster, namespace, job)
    lines.append("pods:" if found else "pods:      none (not admitted yet, or finished and cleaned up)")
    lines += [f"  {pod_line(p)}" for p in found]
    return "\n".join(lines)


def logs(cluster: Cluster, namespace: str, job: str, tail: Optional[int] = None, container: Optional[str] = None) -> str:
    """``jobs logs``: every pod's log, pod by pod (rank 0 first: pod names sort by index)."""
    found = pods(cluster, namespace, job)
    if not found:
        return f"no pod of job {job!r} in namespace {namespace} (pending, or finished and cleaned up)"
    parts = []
    for pod in found:
        name = pod["metadata"]["name"]
        parts.append(f"==> {name} <==")
        parts.append(cluster.logs(name, namespace, container, tail).rstrip("\n"))
    return "\n".join(parts)


def cancel(cluster: Cluster, namespace: str, job: str) -> list[str]:
    """``jobs cancel``: delete what the job's submission created (its Workload and pods go with
    their owner). Returns ``Kind/name`` of each object deleted."""
    from .cluster import Forbidden, NotServed

    deleted = []
    for api_version, kind in RELEASE_KINDS:
        try:
            found = cluster.list(api_version, kind, namespace, f"app.kubernetes.io/instance={job}")
        except NotServed:  # no KEDA or no monitoring on this cluster: nothing of that kind to delete
            continue
        except Forbidden:  # a kind this identity cannot even list, it cannot have created either
            continue
        for obj in found:
            cluster.delete(api_version, kind, obj["metadata"]["name"], namespace)
            deleted.append(f"{kind}/{obj['metadata']['name']}")
    return deleted
