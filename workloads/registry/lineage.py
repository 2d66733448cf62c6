"""Lineage: one chain of records, each naming the previous one by the sha256 of its canonical JSON.

    dataset -> training run -> checkpoint -> evaluation -> promotion

Built at publish time from what each stage already wrote: the dataset's ``manifest.json``, the run's
``config.json`` (the resolved configuration), ``environment.json`` (git commit, image digest, world
size) and ``metrics.jsonl`` (tokens seen, step times), the export's ``training_provenance.json``, the
evaluation's ``results.json`` and the gate's ``promotion.json``. A fact no stage recorded is ``null``
in its record, never guessed. ``lineage.json`` goes into the published revision beside the model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

from .. import objectstore
from ..data.shards import MANIFEST, manifest_sha256
from ..errors import UserError
from ..eval import RESULTS_DIR, RESULTS_FILE
from ..gate import PROMOTION_FILE

LINEAGE_FILE = "lineage.json"
SCHEMA = "infratech-lineage-v1"
KINDS = ("dataset", "training-run", "checkpoint", "evaluation", "promotion")
PROVENANCE = "training_provenance.json"


def record_sha256(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _json(path: Path) -> Optional[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _dataset_manifest(location: Optional[str], run_dir: Optional[Path]) -> Optional[dict]:
    candidates = []
    if location:
        candidates.append(location)
    if run_dir is not None:
        candidates.append(str(run_dir / "data"))
    for loc in candidates:
        if objectstore.is_remote(loc):
            uri = objectstore.join(loc, MANIFEST)
            if objectstore.exists(uri):
                return json.loads(objectstore.read_bytes(uri))
        elif (Path(loc) / MANIFEST).is_file():
            return json.loads((Path(loc) / MANIFEST).read_text(encoding="utf-8"))
    return None


def _training(run_dir: Optional[Path]) -> dict:
    if run_dir is None:
        return {}
    steps: dict[int, dict] = {}
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
            if "step" in rec:
                steps[rec["step"]] = rec  # a resumed run appends: the later line of a step wins
    seconds, before = 0.0, 0
    for step in sorted(steps):
        seconds += steps[step].get("step_time_s", 0) * (step - before)
        before = step
    last = steps[max(steps)] if steps else {}
    return {"steps": last.get("step"), "tokens_seen": last.get("tokens_seen"), "train_seconds": round(seconds, 3)}


def build(model_dir: Path, run_dir: Optional[Path]) -> dict:
    """The chain for ``model_dir`` (its run directory when known), records oldest first."""
    provenance = _json(model_dir / PROVENANCE) or {}
    config = _json(run_dir / "config.json") if run_dir else None
    environment = (_json(run_dir / "environment.json") if run_dir else None) or {}
    results_raw = (model_dir / RESULTS_DIR / RESULTS_FILE).read_bytes()
    results = json.loads(results_raw)
    promotion_raw = (model_dir / PROMOTION_FILE).read_bytes()
    promotion = json.loads(promotion_raw)

    location = (environment.get("dataset") or {}).get("location") or ((config or {}).get("data") or {}).get("path")
    manifest = _dataset_manifest(location, run_dir)
    data_sha = provenance.get("dataset_manifest_sha256") or (environment.get("dataset") or {}).get("manifest_sha256")
    if manifest is not None and data_sha and manifest_sha256(manifest) != data_sha:
        raise UserError(f"dataset {location}: its manifest.json (sha256 {manifest_sha256(manifest)[:12]}…) is not "
                        f"the one the run read ({data_sha[:12]}…); the lineage would be false")
    manifest = manifest or {}
    dataset = {"kind": "dataset", "previous": None, "location": location, "manifest_sha256": data_sha,
               "sources": manifest.get("sources"), "totals": manifest.get("totals"),
               "tokenizer_sha256": (manifest.get("tokenizer") or {}).get("sha256"),
               "shards": [{k: s.get(k) for k in ("file", "sha256", "tokens")} for s in manifest.get("shards", [])]
               or None}
    train = _training(run_dir)
    world = environment.get("world_size")
    device = environment.get("device")
    hours = None if world is None or not train.get("train_seconds") else round(train["train_seconds"] * world / 3600, 6)
    run = {"kind": "training-run", "recipe": (config or {}).get("run", {}).get("name") or provenance.get("run"),
           "config": config,
           "config_sha256": None if config is None else record_sha256(config),
           "git_commit": environment.get("git_commit"), "git_dirty": environment.get("git_dirty"),
           "image_digest": environment.get("image_digest"), "world_size": world, "device": device,
           # device-hours: GPU-hours when the device is a GPU (cuda), CPU-process-hours otherwise
           "device_hours": hours, "gpu_hours": hours if device and device.startswith("cuda") else (
               0.0 if device else None),
           "tokens_seen": train.get("tokens_seen"), "steps": train.get("steps"), "torch": environment.get("torch")}
    checkpoint = {"kind": "checkpoint", "step": provenance.get("step"), "source": provenance.get("checkpoint"),
                  "fingerprint": promotion["model"]["fingerprint"], "files": promotion["model"]["files"]}
    evaluation = {"kind": "evaluation", "results_sha256": hashlib.sha256(results_raw).hexdigest(),
                  "suite": results["suite"]["name"], "backend": results.get("backend"),
                  "limit": results.get("limit"), "started": results.get("started"),
                  "scores": {k: v.get("value") for k, v in results["scores"].items()}}
    decision = {"kind": "promotion", "promotion_sha256": hashlib.sha256(promotion_raw).hexdigest(),
                "verdict": promotion["verdict"], "decided_at": promotion.get("decided_at"),
                "thresholds": promotion.get("thresholds"),
                "checks": [{k: c.get(k) for k in ("rule", "metric", "passed", "detail")} for c in promotion["checks"]]}
    records, previous = [], None
    for rec in (dataset, run, checkpoint, evaluation, decision):
        rec["previous"] = previous
        previous = record_sha256(rec)
        records.append({**rec, "sha256": previous})
    return {"schema": SCHEMA, "head": previous, "records": records}


def verify(lineage: dict) -> list[str]:
    """What is wrong with a chain (empty: each record hashes to its ``sha256`` and names the previous)."""
    problems, previous = [], None
    records = lineage.get("records") or []
    if [r.get("kind") for r in records] != list(KINDS):
        problems.append(f"records are {[r.get('kind') for r in records]}, expected {list(KINDS)}")
    for rec in records:
        body = {k: v for k, v in rec.items() if k != "sha256"}
        if rec.get("previous") != previous:
            problems.append(f"{rec.get('kind')}: names {rec.get('previous')} as previous, not {previous}")
        actual = record_sha256(body)
        if actual != rec.get("sha256"):
            problems.append(f"{rec.get('kind')}: hashes to {actual}, not the recorded {rec.get('sha256')}")
        previous = rec.get("sha256")
    if records and lineage.get("head") != previous:
        problems.append(f"head {lineage.get('head')} is not the last record {previous}")
    return problems
