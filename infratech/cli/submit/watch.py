"""``infratech jobs watch NAME``: a job's Kueue state and its latest training metrics, followed
until the job finishes (``--once``: one snapshot).

The state is :func:`.jobs.status` of the job's Workload; the metrics are the last JSON metric line
(``{"step": …, "loss": …}``, what ``workloads.train`` prints on stdout) in the log of the job's
first pod (rank 0: pod names sort by index). On a terminal the state and metrics are one live line;
elsewhere one plain line per change (``workloads.progress``).

Exit: 0 the job succeeded (or ``--once``), 1 it failed, was deactivated or disappeared, 2 no such job.
"""

from __future__ import annotations

import json
import time
from typing import Callable, Optional, TextIO

from workloads.progress import Progress

from . import jobs as _jobs

LOG_TAIL = 200  # lines of rank 0's log read per poll: metric lines come every log_every steps
ENDED = {"Succeeded": 0, "Failed": 1, "Deactivated": 1}


def latest_metrics(log: str) -> Optional[dict]:
    """The last trainer metric line in a pod's log (other lines, and JSON without a step, ignored)."""
    for line in reversed(log.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "step" in record and "loss" in record:
            return record
    return None


def metrics_words(record: Optional[dict]) -> str:
    if not record:
        return "no metrics yet"
    parts = [f"step {record['step']}", f"loss {record['loss']:.4f}"]
    if record.get("tokens_per_s") is not None:
        parts.append(f"{record['tokens_per_s']:,.0f} tok/s")
    if record.get("mfu") is not None:
        parts.append(f"MFU {record['mfu'] * 100:.1f}%")
    if record.get("tokens_seen") is not None:
        parts.append(f"{record['tokens_seen']:,} tokens seen")
    return " · ".join(parts)


def snapshot(cluster: _jobs.Cluster, namespace: str, job: str) -> tuple[Optional[_jobs.JobStatus], Optional[dict]]:
    """The job's status (None: no Workload) and rank 0's latest metric line (None: none yet)."""
    status = _jobs.find(cluster, namespace, job)
    pods = _jobs.pods(cluster, namespace, job) if status is not None else []
    record = latest_metrics(cluster.logs(pods[0]["metadata"]["name"], namespace, None, LOG_TAIL)) if pods else None
    return status, record


def once(cluster: _jobs.Cluster, namespace: str, job: str) -> tuple[int, str]:
    status, record = snapshot(cluster, namespace, job)
    if status is None:
        return 2, f"no job {job!r} in namespace {namespace} (no Kueue Workload)"
    return 0, f"{status.job}: {status.state} ({status.reason}); {metrics_words(record)}"


def watch(cluster: _jobs.Cluster, namespace: str, job: str, *, interval_s: float = 10.0,
          sleep: Callable[[float], None] = time.sleep, stream: Optional[TextIO] = None,
          live: Optional[bool] = None) -> int:
    """Poll every ``interval_s`` until the job ends; one phase per Kueue state, metrics as notes."""
    # the polls are the pace: a plain line for each poll that brought something new
    progress = Progress(f"jobs watch {job}", stream=stream, live=live, plain_every_s=0)
    state, last = None, None
    while True:
        status, record = snapshot(cluster, namespace, job)
        if status is None:
            if state is None:
                progress.log(f"no job {job!r} in namespace {namespace} (no Kueue Workload)")
                return 2
            progress.end(f"the Workload is gone (cancelled, or deleted after {state})")
            progress.summary()
            return 1
        if status.state != state:
            if state is not None:
                progress.end(f"then {status.state}")
            state = status.state
            progress.start(state)
            progress.log(f"{status.state}: {status.reason}")
        if record and record != last:
            last = record
            progress.update(note=metrics_words(record))
        if state in ENDED:
            progress.end(status.reason)
            progress.changed(f"final metrics: {metrics_words(last)}")
            progress.summary()
            return ENDED[state]
        sleep(interval_s)
