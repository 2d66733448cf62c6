"""The files that make a model, and their sha256: what evaluation results, the promotion verdict
and the serving cache all name, so that each of them is tied to exact weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import UserError
from ..files import sha256_file

# Evidence about a model lives inside its directory but is not part of the model: the evaluation,
# the verdict, the run report and the model card (README.md) that links it (workloads.report).
EVIDENCE = ("evaluation", "promotion.json", "report", "README.md")


def check_hf_dir(model_dir: str | Path) -> Path:
    """A local Hugging Face model directory, or a UserError that says what is missing."""
    path = Path(model_dir)
    if not path.is_dir():
        raise UserError(f"model {model_dir}: no such directory")
    if not (path / "config.json").is_file():
        raise UserError(f"model {model_dir}: no config.json (expected a Hugging Face model directory, "
                        "e.g. what `python -m workloads.train.export` writes)")
    if not any(path.glob("*.safetensors")):
        raise UserError(f"model {model_dir}: no *.safetensors weights")
    return path


def model_files(model_dir: str | Path) -> dict[str, dict]:
    """``{relative path: {"sha256", "bytes"}}`` of every model file (evidence and dot-files excluded)."""
    root = check_hf_dir(model_dir)
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if rel.parts[0] in EVIDENCE or any(part.startswith(".") for part in rel.parts):
            continue
        files[rel.as_posix()] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return files


def fingerprint(files: dict[str, dict]) -> str:
    """One sha256 over the per-file digests: a short name for exact weights + config + tokenizer."""
    canon = json.dumps({k: v["sha256"] for k, v in files.items()}, sort_keys=True).encode()
    return hashlib.sha256(canon).hexdigest()


def differences(expected: dict[str, dict], actual: dict[str, dict]) -> list[str]:
    """What differs between two file lists, one line per file (empty: identical)."""
    out = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            out.append(f"{name}: missing")
        elif name not in expected:
            out.append(f"{name}: not in the recorded list")
        elif expected[name]["sha256"] != actual[name]["sha256"]:
            out.append(f"{name}: sha256 {actual[name]['sha256'][:12]}… differs from the recorded "
                       f"{expected[name]['sha256'][:12]}…")
    return out
