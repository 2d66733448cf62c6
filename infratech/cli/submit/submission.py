"""A submission from job file to applied objects: validate, resolve, render, apply.

    job file --models--> TrainJob/EvalJob/ServeJob --resolve--> Target (team's namespace, queue,
    flavour) --values--> chart values --render--> manifests (helm template) --cluster--> applied

Everything up to the manifests is offline and deterministic: ``--dry-run`` prints them and stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..stacks import Project
from . import images, models, render, resolve, values

# dependencies first: what a workload mounts or is reached through exists before it starts
APPLY_ORDER = ("ConfigMap", "Service", "NetworkPolicy", "PodDisruptionBudget", "ServiceMonitor", "Deployment", "ScaledObject", "Job", "TrainJob")


@dataclass(frozen=True)
class Submission:
    release: values.Release
    target: resolve.Target
    manifests: str  # helm template's output, as printed by --dry-run
    objects: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = ()  # what the user should know about the images it runs

    def summary(self) -> str:
        r, t = self.release, self.target
        gpu = r.values.get("gpu", {})
        count = gpu.get("perNode", gpu.get("count", 0))
        nodes = r.values.get("nodes")
        where = f"namespace {r.namespace}" + (f", LocalQueue {r.values['queue']}" if "queue" in r.values else "")
        gpus = f"{nodes} x {count}" if nodes else str(count)
        flavour = f"{gpus} GPU(s) {gpu.get('model')}" if count else "CPU only"
        return f"{r.kind} {r.name} -> chart {r.chart}, stack {t.stack}, team {t.team}, {where}, {flavour}"


def prepare(
    project: Project,
    kind: str,
    job_file: Path,
    stack: Optional[str],
    source: str,
    outputs: Optional[dict[str, Any]] = None,
    target_of: Optional[Callable[[str, str], resolve.Target]] = None,
    images_lock: Optional[Path] = None,
    variant: Optional[str] = None,
    image: Optional[str] = None,
) -> Submission:
    """Validate ``job_file``, resolve it and render its chart. ``target_of(team, source)``: where
    the job goes, read from the cluster's description; else from ``stack``'s ``outputs`` (when the
    caller already has them) or those read from ``source``. The job runs the images of
    ``images_lock`` (default: the project's build/images/images.lock) by digest, ``variant`` (default:
    cuda with GPUs, else cpu), unless ``image`` (``--image``) or the job file names one."""
    job = models.load(kind, job_file)
    if target_of is not None:
        target = target_of(job.team, str(job_file))
    else:
        if outputs is None:
            outputs = resolve.stack_outputs(project, stack, source)
        target = resolve.target(outputs, stack, job.team, str(job_file))
    charts = project.root / "charts"
    lock_path = images_lock or project.root / images.registry.DEFAULT_LOCK
    pins = images.pinned(kind, job, target.stack, target.image_registry, lock_path, variant, image, str(job_file))
    release = values.release(kind, job, target, charts, str(job_file), pins.values)
    text = render.template(
        charts / release.chart, release.name, release.namespace, release.values, helm=render.require_helm(project.root)
    )
    return Submission(release=release, target=target, manifests=text, objects=tuple(render.documents(text)), notes=pins.notes)


def ordered(objects) -> list[dict[str, Any]]:
    rank = {kind: i for i, kind in enumerate(APPLY_ORDER)}
    return sorted(objects, key=lambda o: rank.get(o["kind"], len(rank)))


def apply(submission: Submission, cluster, server_dry_run: bool = False) -> list[str]:
    """Server-side apply of every object, dependencies first; ``Kind/name`` of each."""
    done = []
    for obj in ordered(submission.objects):
        cluster.apply(obj, dry_run=server_dry_run)
        done.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return done
