"""``infratech models show ORG/NAME[:REVISION] --store URL [--json]``: a published model's lineage.

Reads the registry's store (``workloads.registry``: ``s3://BUCKET/PREFIX`` with the object-store
variables, or a local directory), checks the ``lineage.json`` blob against its digest and the chain
record by record, and prints dataset -> training run -> checkpoint -> evaluation -> promotion.
"""

from __future__ import annotations

import json
import os
import sys

from ...exits import EXIT_BAD_INPUT

ENV_STORE = "INFRATECH_REGISTRY_STORE"


def add(sub) -> None:
    models = sub.add_parser("models", help="models published in the registry (docs/registry.md)")
    msub = models.add_subparsers(dest="models_command", required=True)
    show = msub.add_parser("show", help="a published model's lineage, checked")
    show.add_argument("name", help="ORG/NAME or ORG/NAME:REVISION (a commit id or main; default main)")
    show.add_argument("--store", default=os.environ.get(ENV_STORE),
                      help=f"the registry's store: s3://BUCKET/PREFIX or a directory (default ${ENV_STORE})")
    show.add_argument("--json", action="store_true", help="the lineage as JSON")
    show.set_defaults(run=run, project_free=True)


def _line(rec: dict) -> list[str]:
    kind = rec["kind"]
    if kind == "dataset":
        totals = rec.get("totals") or {}
        srcs = rec.get("sources") or []
        return [f"location {rec.get('location')}", f"manifest sha256 {rec.get('manifest_sha256')}",
                f"{totals.get('tokens', 'unknown')} tokens in {totals.get('shards', 'unknown')} shards; "
                f"{len(srcs)} source(s): " + ", ".join(str(s.get('location')) for s in srcs)]
    if kind == "training-run":
        return [f"recipe {rec.get('recipe')}, config sha256 {rec.get('config_sha256')}",
                f"git commit {rec.get('git_commit') or 'not recorded'}"
                + (" (uncommitted changes)" if rec.get("git_dirty") else ""),
                f"image {rec.get('image_digest') or 'not recorded'}",
                f"world size {rec.get('world_size')} on {rec.get('device')}, {rec.get('steps')} steps, "
                f"{rec.get('tokens_seen')} tokens seen, {rec.get('device_hours')} device-hours "
                f"({rec.get('gpu_hours')} GPU-hours)"]
    if kind == "checkpoint":
        files = rec.get("files") or {}
        return [f"step {rec.get('step')}, fingerprint {rec.get('fingerprint')}"] + [
            f"{name}  sha256 {info['sha256']}  {info['bytes']} bytes" for name, info in sorted(files.items())]
    if kind == "evaluation":
        return [f"suite {rec.get('suite')} ({rec.get('backend')}), results sha256 {rec.get('results_sha256')}"] + [
            f"{k} = {v}" for k, v in sorted((rec.get("scores") or {}).items())]
    return [f"{rec.get('verdict')} on {rec.get('decided_at')}, promotion.json sha256 {rec.get('promotion_sha256')}"] + [
        f"{'pass' if c.get('passed') else 'FAIL'}  {c.get('detail')}" for c in rec.get("checks") or []]


def run(args, project=None) -> int:
    from workloads.errors import UserError
    from workloads.registry.lineage import LINEAGE_FILE, verify
    from workloads.registry.store import CorruptObject, Store, check_repo

    repo, _, revision = args.name.partition(":")
    try:
        if not args.store:
            raise UserError(f"--store: no registry store given (or set ${ENV_STORE})")
        check_repo(repo)
        store = Store(args.store)
        if not store.has_repo(repo):
            raise UserError(f"model {repo}: not in the registry at {args.store}")
        commit = store.resolve(repo, revision or "main")
        manifest = store.manifest(repo, commit) if commit else None
        if manifest is None:
            raise UserError(f"model {repo}: no revision {revision!r} (give a commit id or main)")
        info = manifest["files"].get(LINEAGE_FILE)
        if info is None:
            raise UserError(f"{repo}@{commit}: published without {LINEAGE_FILE}")
        path = store.verified_blob(info["sha256"], info["size"])
        try:
            lineage = json.loads(path.read_bytes())
        finally:
            if store.remote:
                path.unlink(missing_ok=True)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CorruptObject as exc:
        print(f"error: {repo}: the stored lineage failed its digest check: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problems = verify(lineage)
    if args.json:
        print(json.dumps({"repo": repo, "commit": commit, "lineage": lineage, "problems": problems}, indent=2))
    else:
        print(f"{repo}@{commit} (published {manifest['published_at']})")
        for rec in lineage["records"]:
            back = f"  <- {rec['previous'][:12]}…" if rec["previous"] else ""
            print(f"\n{rec['kind']}  sha256 {rec['sha256']}{back}")
            for line in _line(rec):
                print(f"  {line}")
        print("\nchain: " + ("intact" if not problems else "BROKEN\n  " + "\n  ".join(problems)))
    return 0 if not problems else EXIT_BAD_INPUT
