"""The phases of ``infratech e2e``, each a small function of a :class:`Context` that fills its
:class:`~.model.Outcome` and raises :class:`~.model.PhaseError` on the first check that fails.

They call the commands' own code: the offline plan and policy verdicts (``infratech plan``),
``deploy.run`` and the self-built runner (``infratech up``/``destroy``), the submission and job
status of ``infratech submit``/``jobs``, and the submit commands' API-server adapter."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from workloads.progress import Progress

from ...costs import stack_costs
from ...policy import blocking
from .. import deploy, phases as _selfbuilt, plan as _plan
from ..stacks import Project, stack_config
from ..submit import submission as _submission
from ..submit.watch import ENDED
from . import checks
from .model import Outcome, PhaseError

TINY_JOB = Path("examples/jobs/train-tiny.yaml")
POLL_S = 15.0  # seconds between two reads of what converges (nodes, queues, the job)


def _kube(context: Optional[str], config_file: Optional[str] = None):
    from ..submit.cluster import KubeCluster

    return KubeCluster(context, config_file)


@dataclass
class Context:
    project: Project
    stack: str
    echo: Callable[[str], None] = print  # the tools' own lines (a log file on the command line)
    progress: Optional[Progress] = None
    api: Any = None  # the Automation API module (None: pulumi.automation; tests pass a recorder)
    cluster_factory: Callable[..., Any] = _kube  # (kube context, kubeconfig file) -> API-server adapter
    ansible: Optional[_selfbuilt.Ansible] = None  # self-built bootstrap (None: logged ansible-playbook)
    log: Optional[Path] = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    poll_s: float = POLL_S
    deadline: Optional[float] = None  # clock() value the phase in flight must end by (its --timeout)
    recording: Any = None  # the offline plan, once the plan phase ran
    outputs: dict = field(default_factory=dict)  # the deployed stack's outputs, secrets masked
    kubeconfig: Optional[str] = None  # the stack's own kubeconfig output (a secret), when it has one
    _cluster: Any = None

    def cluster(self):
        """The API-server adapter on the stack's kubeconfig output (written for the client in a
        file readable by its owner only, removed at once), else $KUBECONFIG at the stack's
        ``kube_context`` (an existing cluster) or its current context."""
        if self._cluster is None:
            context = self.outputs.get("kube_context") or None
            if not self.kubeconfig:
                self._cluster = self.cluster_factory(context)
                return self._cluster
            with tempfile.TemporaryDirectory(prefix="infratech-e2e-") as tmp:
                path = Path(tmp) / "kubeconfig"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(self.kubeconfig)
                self._cluster = self.cluster_factory(None, str(path))  # the client reads it now
        return self._cluster

    def expired(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    def until(self, outcome: Outcome, name: str, probe: Callable[[], tuple[bool, str]]) -> str:
        """Poll ``probe`` until it holds or the phase's deadline passes; the check is written either way."""
        while True:
            ok, evidence = probe()
            if ok or self.expired():
                break
            if self.progress:
                self.progress.update(note=evidence[:120])
            self.sleep(self.poll_s)
        if not outcome.check(name, ok, evidence):
            raise PhaseError(f"{name}: not so before the phase's timeout: {evidence}")
        return evidence


def plan(ctx: Context, out: Outcome) -> None:
    ctx.recording = _plan.record(ctx.project, ctx.stack)
    out.check("the stack plans offline", True, f"{len(ctx.recording.resources)} resources planned")
    failed = blocking(_plan.policy_verdicts(ctx.project, ctx.recording))
    names = ", ".join(v.rule.id for v in failed)
    if not out.check("no mandatory policy rule violated", not failed, names or "every mandatory rule passes"):
        raise PhaseError(f"mandatory policy rule(s) violated: {names}; see `infratech plan {ctx.stack}`")


def _pools(ctx: Context) -> list[tuple[str, int, int]]:
    return [(p.name, p.nodes["min"], p.gpus_per_node) for p in stack_costs(stack_config(ctx.project, ctx.stack)).pools]


def _kubeconfig(ctx: Context) -> Optional[str]:
    """The stack's ``kubeconfig`` output in clear (a managed or self-built cluster's admin
    kubeconfig), kept in memory only; None where the stack has none (an existing cluster)."""
    raw = deploy.open_stack(ctx.project, ctx.stack, "outputs", ctx.echo, ctx.api).outputs().get("kubeconfig")
    value = getattr(raw, "value", None)
    return value if isinstance(value, str) and "apiVersion" in value else None


def up(ctx: Context, out: Outcome) -> None:
    progress = ctx.progress or Progress(f"e2e {ctx.stack}")
    try:
        if _selfbuilt.self_built(ctx.project, ctx.stack):
            log = ctx.log or deploy.log_file(ctx.project, ctx.stack, "up")
            runner = _selfbuilt.runner_for(ctx.project, ctx.stack, log, ctx.echo, progress, api=ctx.api, ansible=ctx.ansible)
            ran = runner.run()
            evidence = f"self-built phases run: {', '.join(ran)}"
        else:
            deploy.run(ctx.project, ctx.stack, "up", echo=ctx.echo, api=ctx.api)
            evidence = "pulumi up succeeded"
    except _selfbuilt.PhaseFailed as exc:
        out.check("the Pulumi up succeeds", False, str(exc))
        raise PhaseError(str(exc)) from None
    except deploy.DeployError as exc:
        out.check("the Pulumi up succeeds", False, str(exc))
        raise PhaseError(f"pulumi up failed: {exc}") from None
    out.check("the Pulumi up succeeds", True, evidence)
    ctx.outputs = deploy.run(ctx.project, ctx.stack, "outputs", echo=ctx.echo, api=ctx.api)
    ctx.kubeconfig = _kubeconfig(ctx)
    pools = _pools(ctx)
    ctx.until(out, "every pool has at least its min nodes Ready, each with its GPUs allocatable",
              lambda: checks.nodes_ready(ctx.cluster(), pools))


def platform(ctx: Context, out: Outcome) -> None:
    rec = ctx.recording or _plan.record(ctx.project, ctx.stack)
    cluster = ctx.cluster()
    for name, (ok, evidence) in (
        ("every Helm release deployed", checks.all_of([checks.release_deployed(cluster, n, ns) for n, ns in checks.releases(rec)])),
        ("every CRD of the plan's custom resources Established", checks.all_of([checks.crd_established(cluster, n) for n in checks.crds(rec)])),
    ):
        if not out.check(name, ok, evidence):
            raise PhaseError(f"{name}: no: {evidence}")
    queues = checks.cluster_queues(rec)
    ctx.until(out, "every Kueue ClusterQueue Active", lambda: checks.all_of([checks.queue_active(cluster, q) for q in queues]))


def gpu_health(ctx: Context, out: Outcome) -> None:
    out.status = "not-checked"  # this version runs nothing here: model.PHASES says what is not checked


def work(ctx: Context, out: Outcome) -> None:
    job = ctx.project.root / TINY_JOB
    sub = _submission.prepare(ctx.project, "train", job, ctx.stack, "stack", outputs=ctx.outputs or None)
    cluster = ctx.cluster()
    applied = _submission.apply(sub, cluster)
    out.check("the TrainJob applied", True, f"{sub.summary()}: {', '.join(applied)}")
    name, namespace = sub.release.name, sub.release.namespace
    state: dict[str, Any] = {}

    def admitted() -> tuple[bool, str]:
        status, evidence = checks.job_state(cluster, namespace, name)
        state["status"] = status
        return bool(status and status.cluster_queue), evidence

    ctx.until(out, "its Workload admitted by Kueue on a ClusterQueue", admitted)

    def ended() -> tuple[bool, str]:
        status, evidence = checks.job_state(cluster, namespace, name)
        state["status"] = status
        return bool(status and status.state in ENDED), evidence

    evidence = ctx.until(out, "the job ended", ended)
    if not out.check("the job finished successfully", state["status"].state == "Succeeded", evidence):
        raise PhaseError(f"the tiny training did not succeed: {evidence}; `infratech jobs logs {name} -n {namespace}`")


def teardown(ctx: Context, out: Outcome) -> None:
    try:
        deploy.run(ctx.project, ctx.stack, "destroy", echo=ctx.echo, api=ctx.api)
    except deploy.DeployError as exc:
        out.check("the Pulumi destroy succeeds", False, str(exc))
        raise PhaseError(f"pulumi destroy failed: {exc}") from None
    out.check("the Pulumi destroy succeeds", True, "pulumi destroy succeeded")


STEPS: dict[str, Callable[[Context, Outcome], None]] = {
    "plan": plan, "up": up, "platform": platform, "gpu-health": gpu_health, "work": work, "teardown": teardown,
}
