"""Publish a promoted model directory into the registry's store."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..errors import UserError
from ..eval import modelfiles
from ..files import sha256_file
from ..gate import PROMOTION_FILE
from ..gate.decide import status
from ..report import MODEL_CARD, render
from ..report import data as report_data
from . import cards, lineage
from .lineage import LINEAGE_FILE
from .store import MANIFEST_SCHEMA, Store, check_path, check_repo, commit_id, git_blob_id


def model_dir_of(path: str | Path) -> Path:
    """A model directory, or a run directory whose ``export/`` is one (what ``workloads.train`` writes)."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such directory (expected a run directory or an exported model directory)")
    for candidate in (path, path / "export"):  # a run directory has a config.json too (the resolved config)
        if (candidate / "config.json").is_file() and any(candidate.glob("*.safetensors")):
            return candidate
    raise UserError(f"{path}: neither a model directory (no config.json and *.safetensors) "
                    "nor a run directory (no export/ with them); export the checkpoint first "
                    "(python -m workloads.train.export)")


def revision_files(model_dir: Path) -> dict[str, dict]:
    """Every file of the directory that goes into the revision: the model and its evidence (cards,
    evaluation, verdict, lineage); dot-files and unfinished ``*.part`` files left out."""
    files = {}
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(model_dir).as_posix()
        if any(part.startswith(".") for part in rel.split("/")) or rel.endswith(".part"):
            continue
        check_path(rel)
        files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size, "oid": git_blob_id(path)}
    return files


def run_dir_of(source: Path, model_dir: Path) -> Optional[Path]:
    """The training run's directory: the source itself, or the one whose ``export/`` this is."""
    for candidate in (source, model_dir.parent):
        if (candidate / "metrics.jsonl").is_file() and (candidate / "config.json").is_file():
            return candidate
    return None


def _generated(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "oid": hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()}


def publish(source: str | Path, repo: str, store: Store, log: Callable[[str], None] = print,
            run_dir: Optional[str | Path] = None, license: Optional[str] = None,  # noqa: A002 (the card's key)
            languages: Sequence[str] = (), datasets: Sequence[str] = (), base_model: Optional[str] = None,
            provider: Optional[str] = None) -> dict:
    """Refuse what the gate did not promote; build the lineage and the cards from the records; store
    each file by digest, then the manifest, then the ref."""
    check_repo(repo)
    model_dir = model_dir_of(source)
    if run_dir is not None and not (Path(run_dir) / "config.json").is_file():
        raise UserError(f"--run-dir {run_dir}: no config.json (expected the training run's directory)")
    ok, reasons, verdict = status(model_dir)
    if not ok:
        raise UserError(f"{model_dir} is not promoted, so it is not published:\n  " + "\n  ".join(reasons))
    run = Path(run_dir) if run_dir is not None else run_dir_of(Path(source), model_dir)
    if run is None:
        raise UserError(f"{source}: the training run's directory is unknown, and the lineage and cards are made "
                        "from its records; give --run-dir RUN_DIR (the run.dir of workloads.train)")
    if not license:
        raise UserError("--license: give the model's licence as an SPDX id (e.g. Apache-2.0); the card needs it")
    cards.hf_license(license)  # a bad id fails before anything is stored
    files = revision_files(model_dir)
    # status() compared the model files with the verdict; check again on what is about to be stored
    diff = modelfiles.differences(verdict["model"]["files"], {k: v for k, v in files.items()
                                                               if k in verdict["model"]["files"]})
    if diff:
        raise UserError(f"{model_dir}: the files changed while publishing: " + "; ".join(diff))
    chain = lineage.build(model_dir, run)
    meta = cards.metadata(repo, chain, license, list(languages), list(datasets), base_model)
    card = render.model_card(report_data.load(run, model_dir), model_dir, meta,
                             cards.card_sections(repo, chain, meta), title=repo)
    generated = {LINEAGE_FILE: (json.dumps(chain, indent=2, sort_keys=True) + "\n").encode(),
                 MODEL_CARD: card.encode(),
                 cards.SUMMARY_FILE: cards.training_content_summary(repo, chain, meta, provider).encode()}
    uploaded = sum(store.put_blob(model_dir / rel, info["sha256"]) for rel, info in files.items()
                   if rel not in generated)
    for rel, data in generated.items():
        files[rel] = _generated(data)
        key = store.blob_key(files[rel]["sha256"])
        if not store.exists(key):
            store.write(key, data)
            uploaded += 1
    commit = commit_id(files)
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "repo": repo,
        "commit": commit,
        "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": str(model_dir.resolve()),
        "fingerprint": verdict["model"]["fingerprint"],
        "promotion_sha256": files[PROMOTION_FILE]["sha256"],
        "lineage_head": chain["head"],
        "run_dir": None if run is None else str(run.resolve()),
        "files": files,
    }
    store.put_revision(repo, manifest)
    log(f"published {repo}@{commit}: {len(files)} files ({uploaded} new blobs) to {store.url}")
    return manifest
