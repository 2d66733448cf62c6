"""Test doubles and launch helpers for tests/workloads (imported by basename, like tests/infratech's
``upstream``): an in-memory S3 that answers the boto3 calls ``workloads.objectstore`` makes, and
the command lines of the trainer."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class FakeS3:
    """The subset of a boto3 S3 client that workloads.objectstore uses, backed by a dict."""

    def __init__(self):
        self.objects: dict[tuple[str, str], bytes] = {}
        self.calls: list[str] = []

    def _get(self, bucket, key):
        if (bucket, key) not in self.objects:
            err = KeyError(key)
            err.response = {"Error": {"Code": "404"}}
            raise err
        return self.objects[(bucket, key)]

    def list_objects_v2(self, Bucket, Prefix, ContinuationToken=None):
        self.calls.append("list")
        keys = sorted(k for b, k in self.objects if b == Bucket and k.startswith(Prefix))
        start = int(ContinuationToken or 0)
        page = keys[start:start + 2]  # tiny pages, so pagination is exercised
        out = {"Contents": [{"Key": k, "Size": len(self.objects[(Bucket, k)])} for k in page],
               "IsTruncated": start + 2 < len(keys)}
        if out["IsTruncated"]:
            out["NextContinuationToken"] = str(start + 2)
        return out

    def head_object(self, Bucket, Key):
        return {"ContentLength": len(self._get(Bucket, Key))}

    def get_object(self, Bucket, Key):
        self.calls.append(f"get {Key}")
        return {"Body": io.BytesIO(self._get(Bucket, Key))}

    def put_object(self, Bucket, Key, Body):
        self.objects[(Bucket, Key)] = bytes(Body)

    def upload_file(self, Filename, Bucket, Key):
        self.calls.append(f"upload {Key}")
        self.objects[(Bucket, Key)] = Path(Filename).read_bytes()

    def download_file(self, Bucket, Key, Filename):
        self.calls.append(f"download {Key}")
        Path(Filename).write_bytes(self._get(Bucket, Key))


def tiny_config(**over) -> dict:
    """config.json of a tiny Llama (head_dim 32: vLLM's CPU attention takes it)."""
    cfg = {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 2, "num_key_value_heads": 1,
           "max_position_embeddings": 128, "vocab_size": 512}
    cfg.update(over)
    return cfg


def judge(model: Path, promoted: bool = True) -> dict:
    """Run the real gate (``workloads.gate.decide``) on ``model`` with crafted results: a held-out
    perplexity of 5 (promoted) or 500 (rejected) against a maximum of 10. The verdict."""
    from workloads.eval import modelfiles
    from workloads.gate import decide
    from workloads.gate import thresholds

    files = modelfiles.model_files(model)
    (model / "evaluation").mkdir(exist_ok=True)
    (model / "evaluation" / "results.json").write_text(json.dumps({
        "model": {"files": files, "fingerprint": modelfiles.fingerprint(files)}, "suite": {"name": "cpu_smoke"},
        "scores": {"heldout/perplexity": {"value": 5.0 if promoted else 500.0, "higher_is_better": False}}}))
    th = model.parent / "th.yaml"
    th.write_text("max_perplexity: {heldout: 10}\n")
    return decide.decide(model, *thresholds.load(str(th)))


def promoted_model(tmp_path: Path, promoted: bool | None = True, **cfg) -> Path:
    """``tmp_path/model``: a Hugging Face directory of placeholder weights, judged by the real gate
    (promoted, rejected on perplexity, or ``None``: never judged)."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(tiny_config(**cfg)))
    (model / "model.safetensors").write_bytes(b"w" * 1000)
    (model / "tokenizer.json").write_text("{}")
    if promoted is not None:
        judge(model, promoted)
    return model


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc): torchrun starts its workers in their own
    sessions, so a process-group kill would miss them."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def env(**extra) -> dict:
    """Environment of a trainer subprocess: one thread per process (2 cores, 2 processes)."""
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    e.pop("INFRATECH_TRAIN_FAULT", None)
    e.update(extra)
    return e


def train_cmd(run_dir: Path, *overrides: str, nproc: int = 1, max_restarts: int | None = None) -> list[str]:
    head = [sys.executable, "-m", "workloads.train"]
    if nproc > 1 or max_restarts is not None:
        head = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
        if max_restarts is not None:
            head.append(f"--max-restarts={max_restarts}")
        head += ["-m", "workloads.train"]
    return head + ["--recipe", "debug_tiny", f"run.dir={run_dir}", *overrides]


def metrics(run_dir: Path) -> dict[int, dict]:
    """Last record per step (a resumed run appends; the later line of a step wins)."""
    out: dict[int, dict] = {}
    path = Path(run_dir) / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:  # a line being written while a test polls the file
                continue
            out[rec["step"]] = rec
    return out


def vllm_python_or_skip() -> str:
    """The interpreter that has vLLM (``.venv-serve``); skips the test without it, fails it under CI."""
    import pytest

    from workloads.serve import launcher

    python = launcher.vllm_python()
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"
    found = subprocess.run([python, "-c", probe], capture_output=True).returncode == 0
    if not found:
        message = f"vLLM is not installed for {python}: run `make serve-env` (.venv-serve)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python
