"""Where a job goes, from the stack's outputs: the team's namespace and LocalQueue, the training
runtime, the serving namespace, and the GPU flavour a job asks for.

The outputs come from one of two places, the same keys either way (infratech/program/outputs.py):

* ``plan``: the offline plan of the stack (the Pulumi program under mocks, no CLI, no cloud), what
  ``--dry-run`` uses by default, so a fresh clone can render a job;
* ``stack``: the deployed stack's outputs through the Pulumi Automation API (infratech/cli/deploy.py,
  ``pulumi stack output``), what a real submission uses.

A job asking for something the stack does not have (an unknown team, a GPU model no pool has, more
GPUs per node than the pool's nodes hold) is refused here, naming the job file's field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from ...team_description import SCHEMA
from ..stacks import Project
from .models import JobFileError

Source = Literal["plan", "stack"]


def stack_outputs(project: Project, stack: str, source: Source) -> dict[str, Any]:
    """The stack's outputs (secrets masked): from the offline plan or from the deployed stack."""
    if source == "plan":
        import contextlib
        import io
        import sys

        from ..plan import record

        said = io.StringIO()  # the program's own warnings (budget…): kept, marked as the plan's
        with contextlib.redirect_stderr(said):
            outputs = dict(record(project, stack).outputs)
        for line in said.getvalue().splitlines():
            print(f"# plan of {stack}: {line}", file=sys.stderr)
        return outputs
    from .. import deploy

    return deploy.run(project, stack, "outputs", echo=lambda _line: None)


@dataclass(frozen=True)
class Pool:
    name: str
    role: str
    gpu_model: str
    gpus_per_node: int
    max_nodes: int


@dataclass(frozen=True)
class Target:
    """Everything a job's values need from the stack."""

    stack: str
    team: str
    namespace: str
    local_queue: str
    training_runtime: Optional[str]
    serving_namespace: Optional[str]
    kube_context: Optional[str]
    object_store_port: int
    gpu_pools: tuple[Pool, ...]
    priority_classes: tuple[str, ...] = ()  # the Kueue WorkloadPriorityClasses of the stack
    image_registry: Optional[str] = None  # platform.image_registry: where the cluster pulls our images

    def pools_of(self, model: str) -> list[Pool]:
        return [p for p in self.gpu_pools if p.gpu_model == model]


def _port(endpoint: Optional[str]) -> int:
    from urllib.parse import urlparse

    return (urlparse(endpoint).port or 443) if endpoint else 443


class NoDescription(Exception):
    """The cluster (or the stack) has no team description: its platform is older than this CLI."""


def target(outputs: dict[str, Any], stack: str, team: str, source: str = "job file") -> Target:
    """The team's place in the stack; JobFileError naming ``team`` when the stack has no such team."""
    queues = outputs.get("queues")
    if not isinstance(queues, dict) or not queues:
        raise JobFileError(source, [f"team: stack {stack!r} has no team queues (its platform has no kueue): nothing can be submitted"])
    if team not in queues:
        raise JobFileError(source, [f"team: {team!r} is not a team of stack {stack!r}; teams: {', '.join(sorted(queues))}"])
    descriptions = outputs.get("team_descriptions")
    if not isinstance(descriptions, dict) or team not in descriptions:
        raise NoDescription(
            f"stack {stack!r} exports no team_descriptions: it was deployed by an infratech older than this CLI; "
            "`infratech up` it again with this version"
        )
    return from_description(descriptions[team], team, source, kube_context=outputs.get("kube_context"))


def from_description(description: dict[str, Any], team: str, source: str = "job file", kube_context: Optional[str] = None) -> Target:
    """The Target of a team description (infratech/program/platform/team_description.py), as the
    stack exports it or as the team's ConfigMap ``infratech-team`` holds it: one reading of both."""
    if not isinstance(description, dict) or description.get("schema") != SCHEMA:
        found = description.get("schema") if isinstance(description, dict) else type(description).__name__
        raise NoDescription(f"the description of team {team!r} has schema {found!r}; this CLI reads {SCHEMA!r}: use the CLI of the platform's version")
    stack = description["stack"]
    if not description.get("local_queue"):
        raise JobFileError(source, [f"team: stack {stack!r} has no team queues (its platform has no kueue): nothing can be submitted"])
    store = description.get("object_store") or {}
    return Target(
        stack=stack,
        team=team,
        namespace=description["namespace"],
        local_queue=description["local_queue"],
        training_runtime=description.get("training_runtime"),
        serving_namespace=description.get("serving_namespace"),
        kube_context=kube_context,
        object_store_port=_port(store.get("endpoint")),
        gpu_pools=tuple(
            Pool(name=p["pool"], role=p.get("role") or "", gpu_model=p["flavour"], gpus_per_node=int(p["gpus_per_node"]), max_nodes=int(p["max_nodes"]))
            for p in description.get("gpu_pools") or []
        ),
        priority_classes=tuple(c["name"] for c in description.get("priority_classes") or []),
        image_registry=description.get("image_registry"),
    )


ROLE_FOR = {"train": "training", "eval": "training", "serve": "inference"}


def gpu_model(t: Target, kind: str, model: Optional[str], per_node: int, nodes: int = 1, source: str = "job file") -> str:
    """The GPU model (= Kueue ResourceFlavor) a job runs on: the one it names, else the model of
    the stack's pool for that kind of job (training for train and eval, inference for serve).
    Refused: a model no pool has, more GPUs per node than its pools' nodes hold, more GPUs in all
    than the pools have at their largest."""
    field = "gpus.per_node" if kind == "train" else "gpus.count"
    models = sorted({p.gpu_model for p in t.gpu_pools})
    if not models:
        raise JobFileError(source, [f"gpus.model: stack {t.stack!r} has no GPU pool"])
    if model is None:
        role = ROLE_FOR[kind]
        preferred = [p.gpu_model for p in t.gpu_pools if p.role == role]
        model = (preferred or models)[0]
    elif model not in models:
        raise JobFileError(source, [f"gpus.model: {model!r} is not a GPU model of stack {t.stack!r}; models: {', '.join(models)}"])
    pools = t.pools_of(model)
    widest = max(p.gpus_per_node for p in pools)
    if per_node > widest:
        raise JobFileError(
            source, [f"{field}: {per_node} GPUs on one node, but the {model} nodes of stack {t.stack!r} have {widest}; use more nodes with fewer GPUs each"]
        )
    capacity = sum(p.max_nodes * p.gpus_per_node for p in pools)
    if per_node * nodes > capacity:
        raise JobFileError(
            source,
            [f"{'nodes' if kind == 'train' else field}: {per_node * nodes} {model} GPUs in all, but stack {t.stack!r} has {capacity} at most: the job could never be admitted"],
        )
    return model
