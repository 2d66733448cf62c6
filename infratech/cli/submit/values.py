"""A job file and its place in the stack, as the values of the job's chart.

Only what the job file or the stack decides is written; everything else is the chart's default
(charts/<chart>/values.yaml), so ``helm template`` of the chart with these values is exactly the
submission. The release name is the job's name; the namespace is the team's (serving: the stack's
serving namespace unless the job file names one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .models import EvalJob, Image, JobFileError, ServeJob, TrainJob
from .resolve import Target, gpu_model

CHART = {"train": "llm-train", "eval": "llm-eval", "serve": "llm-serve"}


@dataclass(frozen=True)
class Release:
    """One submission: which chart, under which name, where, with which values."""

    kind: str
    chart: str
    name: str
    namespace: str
    values: dict[str, Any]


def chart_defaults(charts_dir: Path, chart: str) -> dict[str, Any]:
    return yaml.safe_load((charts_dir / chart / "values.yaml").read_text(encoding="utf-8")) or {}


def _common(job, t: Target, defaults: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"team": t.team, "dataClassification": job.data_classification}
    if job.image is not None:
        image = Image.parse(job.image)
        values["image"] = {"repository": image.repository, "tag": image.tag, "digest": image.digest}
    if job.env:  # over the chart's own variables (llm-eval's cache settings), not instead of them
        values["env"] = {**defaults.get("env", {}), **job.env}
    return values


def train_values(job: TrainJob, t: Target, defaults: dict[str, Any], source: str) -> dict[str, Any]:
    model = gpu_model(t, "train", job.gpus.model, job.gpus.per_node, job.nodes, source)
    values = _common(job, t, defaults)
    values.update(
        queue=t.local_queue,
        recipe=job.recipe,
        checkpoint={"uri": job.checkpoint or f"s3://@checkpoints/{t.team}/{job.name}", "runDir": defaults["checkpoint"]["runDir"]},
        nodes=job.nodes,
        gpu={**defaults["gpu"], "model": model, "perNode": job.gpus.per_node},
        restarts={"maxRestarts": job.max_restarts},
    )
    if t.training_runtime:
        values["runtime"] = {**defaults["runtime"], "name": t.training_runtime}
    if job.overrides:
        values["recipeOverrides"] = job.override_args()
    if job.data is not None:
        values["dataPath"] = job.data
    if job.priority is not None:
        values["priorityClass"] = job.priority
    if job.deadline_hours is not None:
        values["activeDeadlineSeconds"] = int(job.deadline_hours * 3600)
    if job.resources is not None:
        values["resources"] = job.resources.values(defaults["resources"])
    return values


def eval_values(job: EvalJob, t: Target, defaults: dict[str, Any], source: str) -> dict[str, Any]:
    values = _common(job, t, defaults)
    if job.gpus.count > 0:
        model = gpu_model(t, "eval", job.gpus.model, job.gpus.count, 1, source)
    else:
        model = ""
    values.update(
        queue=t.local_queue,
        checkpoint=job.checkpoint,
        gpu={**defaults["gpu"], "model": model, "count": job.gpus.count},
    )
    if job.suite is not None:
        values["suite"] = job.suite
    if job.tasks:
        values["tasks"] = list(job.tasks)
    if job.backend is not None:
        values["backend"] = job.backend
    if job.heldout is not None:
        values["heldout"] = job.heldout
    if job.gate:
        values["gate"] = {"thresholds": dict(job.gate)}
    if job.output is not None:
        values["output"] = job.output
    if job.priority is not None:
        values["priorityClass"] = job.priority
    if job.resources is not None:
        values["resources"] = job.resources.values(defaults["resources"])
    return values


def serve_values(job: ServeJob, t: Target, defaults: dict[str, Any], source: str) -> dict[str, Any]:
    model = gpu_model(t, "serve", job.gpus.model, job.gpus.count, job.replicas.max, source)
    values = _common(job, t, defaults)
    values.update(
        model={"uri": job.model, "servedName": job.served_name or job.name},
        profile=job.profile,
        gpu={**defaults["gpu"], "model": model, "count": job.gpus.count},
        apiKey={**defaults["apiKey"], "secretName": job.api_key_secret},
        autoscaling={**defaults["autoscaling"], "enabled": job.replicas.autoscale, "minReplicas": job.replicas.min, "maxReplicas": job.replicas.max},
        replicas=job.replicas.min,
        networkPolicy={**defaults["networkPolicy"], "objectStorePort": t.object_store_port},
    )
    if t.serving_namespace:
        values["service"] = {**defaults["service"], "gatewayNamespace": t.serving_namespace}
    if job.force_unpromoted is not None:
        values["forceUnpromoted"] = job.force_unpromoted
    if job.resources is not None:
        values["resources"] = job.resources.values(defaults["resources"])
    return values


def release(kind: str, job, t: Target, charts_dir: Path, source: str = "job file", images: dict[str, Any] | None = None) -> Release:
    """The chart, release name, namespace and values that submit ``job``; ``images``: the values
    that pin its images (infratech/cli/submit/images.py), over the job's own."""
    chart = CHART[kind]
    priority = getattr(job, "priority", None)
    if priority is not None and priority not in t.priority_classes:
        known = ", ".join(t.priority_classes) or "none (the stack's platform has no Kueue)"
        raise JobFileError(source, [f"priority: {priority!r} is not a priority class of stack {t.stack!r}; classes: {known}"])
    defaults = chart_defaults(charts_dir, chart)
    build = {"train": train_values, "eval": eval_values, "serve": serve_values}[kind]
    values = build(job, t, defaults, source)
    for key, pin in (images or {}).items():
        values[key] = {**values.get(key, {}), **pin}
    namespace = t.namespace
    if kind == "serve":
        namespace = job.namespace or t.serving_namespace or t.namespace
    return Release(kind=kind, chart=chart, name=job.name, namespace=namespace, values=values)
