"""``infratech submit`` and ``infratech jobs``: the commands, wired into infratech/cli.py by
:func:`add_commands` and :func:`run`; ``python -m infratech.cli.submit`` runs them on their own.

    infratech submit train|eval|serve JOB.yaml [--context CTX] [--dry-run] [--server-dry-run]
                                               [--stack S] [--outputs cluster|plan|stack]
                                               [--images-lock PATH] [--variant cpu|cuda] [--image REF]
    infratech jobs list [--team T | --namespace NS] [--context CTX] [--stack S]
    infratech jobs status|logs|cancel NAME [--team T | --namespace NS] [--tail N] [--container C]
    infratech jobs watch NAME [--once] [--interval SECONDS]   Kueue state and metrics until the job ends

Where the team's namespace, queue, runtime and GPU flavours come from (``--outputs``):

* ``cluster`` (the default without ``--stack``): the team's description, the ConfigMap
  ``infratech-team`` in the team's namespace, read with the user's kubeconfig (current context or
  ``--context``): all a researcher needs is a kubeconfig for the team (docs/access.md);
* ``plan``: the offline plan of ``--stack`` (default with ``--dry-run``: no cluster, no Pulumi CLI);
* ``stack``: the deployed stack's outputs through the Pulumi CLI (the default with ``--stack``).

Both hold the same document (infratech/program/platform/team_description.py), so the manifests are
the same either way. The job runs the images `make images` built, by digest, from the stack's
registry (build/images/images.lock; infratech/cli/submit/images.py), unless ``--image`` names one. ``--dry-run`` prints the manifests (helm template of the job's chart) and
applies nothing. Exit codes: 0 done, 2 bad input (job file, values the chart refuses, unknown
stack or team), 3 a tool or the cluster failed (helm missing, Pulumi CLI missing or failing, API
server unreachable or refusing, not a member of the team, a platform older than this CLI).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from ...config import StackConfigError
from ...images.registry import ImagesLockError
from ...images.spec import VARIANTS
from ...exits import DEFAULT_STACK, EXIT_BAD_INPUT, EXIT_TOOL
from ..deploy import DeployError, PulumiCliMissing
from ..stacks import Project, StackFileError, find_project
from . import description, jobs as _jobs, watch as _watch
from .cluster import ClusterError
from .models import JobFileError
from .render import HelmMissing, RenderError
from .resolve import NoDescription

SOURCES = ("cluster", "plan", "stack")



def add_commands(sub, default_stack: str) -> None:
    """Add ``submit`` and ``jobs`` to the ``infratech`` parser's subcommands."""
    submit = sub.add_parser("submit", help="validate a job file, render its chart and apply it to the team's queue")
    kinds = submit.add_subparsers(dest="submit_kind", required=True, metavar="{train,eval,serve}")
    for kind, text in (
        ("train", "a training run (chart llm-train: TrainJob)"),
        ("eval", "an evaluation and its promotion gate (chart llm-eval: Job)"),
        ("serve", "a promoted checkpoint behind the gateway (chart llm-serve: vLLM)"),
    ):
        p = kinds.add_parser(kind, help=text)
        p.add_argument("job_file", type=Path, metavar="JOB.yaml")
        p.add_argument("--stack", help=f"stack whose outputs place the job (platform engineers; --dry-run default: {default_stack})")
        p.add_argument("--dry-run", action="store_true", help="print the manifests; apply nothing")
        p.add_argument(
            "--outputs",
            choices=SOURCES,
            help="where the team's description comes from: the cluster (your kubeconfig), the stack's offline plan, or the "
            "deployed stack through the Pulumi CLI (default: plan with --dry-run, stack with --stack, else cluster)",
        )
        p.add_argument("--server-dry-run", action="store_true", help="send to the API server with dryRun=All: validated and admitted, not created")
        p.add_argument("--context", help="kubeconfig context (default: with --stack its output kube_context, else the current one)")
        p.add_argument("--images-lock", type=Path, metavar="PATH", help="the digests of the built images (default: <project>/build/images/images.lock, written by `make images`)")
        p.add_argument("--variant", choices=VARIANTS, help="which build of the images: cuda (GPU nodes) or cpu (default: cuda when the job asks for GPUs, else cpu)")
        p.add_argument("--image", metavar="REF", help="run this image (registry/path:tag or @sha256:…) instead of the built one; images.lock is not read")

    submit.set_defaults(run=run)

    j = sub.add_parser("jobs", help="a team's jobs as Kueue sees them: list, status, logs, watch, cancel")
    j.set_defaults(run=run)
    actions = j.add_subparsers(dest="jobs_action", required=True)
    for action, text in (
        ("list", "every job of the namespace: queue, state and why, GPUs, flavour"),
        ("status", "one job: its Kueue Workload in words, and its pods"),
        ("logs", "the logs of a job's pods"),
        ("watch", "follow a job's Kueue state and its latest training metrics until it ends"),
        ("cancel", "delete a job and what its submission created"),
    ):
        p = actions.add_parser(action, help=text)
        if action != "list":
            p.add_argument("name", help="the job's name (the job file's `name`)")
        where = p.add_mutually_exclusive_group()
        where.add_argument("--namespace", "-n", help="the team's namespace (by default named after the team)")
        where.add_argument("--team", help="the team, looked up in its description on the cluster (or the stack's outputs)")
        p.add_argument("--stack", help=f"look --team up in this stack's outputs instead of the cluster (plan default: {default_stack})")
        p.add_argument(
            "--outputs", choices=SOURCES, help="where --team is looked up (default: the deployed stack with --stack, else the cluster)"
        )
        p.add_argument("--context", help="kubeconfig context (default: the current one)")
        if action == "logs":
            p.add_argument("--tail", type=int, help="only the last N lines of each pod")
            p.add_argument("--container", help="container (default: the pod's only or first one)")
        if action == "watch":
            p.add_argument("--once", action="store_true", help="one snapshot, then exit")
            p.add_argument("--interval", type=float, default=10.0, metavar="SECONDS", help="seconds between polls (default 10)")


def _cluster(context: Optional[str]):
    from .cluster import KubeCluster

    return KubeCluster(context)


def _source(args) -> str:
    if args.outputs:
        return args.outputs
    if getattr(args, "dry_run", False):
        return "plan"
    return "stack" if args.stack else "cluster"


def _submit(args, project: Project, cluster_factory) -> int:
    from . import submission

    source = _source(args)
    images = {"images_lock": args.images_lock, "variant": args.variant, "image": args.image}
    if source == "cluster":
        cluster = cluster_factory(args.context)
        sub = submission.prepare(project, args.submit_kind, args.job_file, None, source,
                                 target_of=lambda team, where: description.target(cluster, team, where), **images)
    else:
        sub = submission.prepare(project, args.submit_kind, args.job_file, args.stack or DEFAULT_STACK, source, **images)
    print(f"# {sub.summary()}", file=sys.stderr)
    for note in sub.notes:
        print(f"# note: {note}", file=sys.stderr)
    if args.dry_run:
        sys.stdout.write(sub.manifests)
        return 0
    if source != "cluster":
        cluster = cluster_factory(args.context or sub.target.kube_context)
    for line in submission.apply(sub, cluster, server_dry_run=args.server_dry_run):
        print(f"{line} {'validated (server dry run)' if args.server_dry_run else 'applied'}")
    if sub.release.kind != "serve" and not args.server_dry_run:
        print(f"queued in {sub.release.values['queue']}: `infratech jobs status {sub.release.name} -n {sub.release.namespace}`")
    return 0


def _namespace(args, project: Project, cluster) -> str:
    if args.namespace:
        return args.namespace
    if not args.team:
        raise JobFileError("infratech jobs", ["give --namespace NS or --team TEAM"])
    source = _source(args)
    if source == "cluster":
        return description.target(cluster, args.team, "--team").namespace
    from .resolve import stack_outputs, target

    stack = args.stack or DEFAULT_STACK
    return target(stack_outputs(project, stack, source), stack, args.team, "--team").namespace


def _jobs_command(args, project: Project, cluster_factory) -> int:
    cluster = cluster_factory(args.context)
    namespace = _namespace(args, project, cluster)
    if args.jobs_action == "list":
        found = _jobs.list_jobs(cluster, namespace)
        print(_jobs.table(found) if found else f"no Kueue workload in namespace {namespace}")
    elif args.jobs_action == "status":
        print(_jobs.describe(cluster, namespace, args.name))
    elif args.jobs_action == "logs":
        print(_jobs.logs(cluster, namespace, args.name, tail=args.tail, container=args.container))
    elif args.jobs_action == "watch":
        if args.interval <= 0:
            raise JobFileError("infratech jobs watch", [f"--interval: {args.interval:g} is not a positive number of seconds"])
        if args.once:
            code, line = _watch.once(cluster, namespace, args.name)
            print(line, file=sys.stdout if code == 0 else sys.stderr)
            return EXIT_BAD_INPUT if code == 2 else code
        code = _watch.watch(cluster, namespace, args.name, interval_s=args.interval)
        return EXIT_BAD_INPUT if code == 2 else code
    else:
        deleted = _jobs.cancel(cluster, namespace, args.name)
        if not deleted:
            print(f"nothing of job {args.name!r} in namespace {namespace}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print("\n".join(f"deleted {d}" for d in deleted))
    return 0


def run(args, project: Project, cluster_factory=_cluster) -> int:
    """Run a parsed ``submit`` or ``jobs`` command; the exit code. ``cluster_factory(context)``
    gives the cluster adapter (tests pass a fake)."""
    try:
        if args.command == "submit":
            return _submit(args, project, cluster_factory)
        return _jobs_command(args, project, cluster_factory)
    except JobFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RenderError as exc:
        print(f"error: the chart refused the job's values:\n{exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (StackConfigError, StackFileError, ImagesLockError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (HelmMissing, PulumiCliMissing, DeployError, ClusterError, NoDescription) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TOOL


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m infratech.cli.submit submit|jobs …``: the same commands without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="python -m infratech.cli.submit", description="submit jobs and follow them")
    parser.add_argument("--project-dir", type=Path, default=None, help="directory holding Pulumi.yaml (default: search upwards from cwd)")
    add_commands(parser.add_subparsers(dest="command", required=True), DEFAULT_STACK)
    args = parser.parse_args(argv)
    try:
        project = find_project(args.project_dir)
    except StackFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return run(args, project)
