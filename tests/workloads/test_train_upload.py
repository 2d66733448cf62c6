"""Checkpoint uploads off the critical path, on CPU: two gloo processes under torchrun write to a
slow or refusing S3 stand-in (moto's S3 server behind ``s3_standin.SlowS3``) through the real
boto3 client. Training goes on during an upload, the next save waits for it, a refused file is
retried, a checkpoint that cannot be uploaded is reported and never offered for resume, and an
empty local directory resumes from object storage with the same losses. About two minutes on 2 cores.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("moto")

from s3_standin import SlowS3  # noqa: E402
from workloads_fakes import REPO, env, metrics, train_cmd  # noqa: E402

TIMEOUT = 300
PREFIX = "runs/tiny"
UPLOAD = ["checkpoint.every=4", f"checkpoint.upload=s3://@checkpoints/{PREFIX}", "export.at_end=false",
          "checkpoint.upload_attempts=3", "checkpoint.upload_backoff_s=0.05"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The debug_tiny recipe's synthetic corpus, packed once by the product's own code."""
    from workloads.data import synthetic
    from workloads.data.prepare import prepare
    from workloads.train import recipes

    cfg = recipes.get("debug_tiny")
    syn, where = cfg.data.synthetic, tmp_path_factory.mktemp("data")
    corpus = synthetic.write_jsonl(where / "src" / "corpus.jsonl", syn.documents, cfg.run.seed)
    prepare([str(corpus)], str(where / "packed"), vocab_size=syn.vocab_size, seq_len=cfg.train.seq_len,
            sequences_per_shard=syn.sequences_per_shard, log=lambda _: None)
    return where / "packed"


def _train(run: Path, dataset: Path, s3: SlowS3, *overrides: str) -> subprocess.CompletedProcess:
    cmd = train_cmd(run, f"data.path={dataset}", *UPLOAD, *overrides, nproc=2)
    return subprocess.run(cmd, cwd=REPO, env=env(**s3.env()), capture_output=True, text=True, timeout=TIMEOUT)


def _in_order(log: str, *needles: str) -> None:
    """Each needle occurs after the one before it."""
    at = 0
    for n in needles:
        found = log.find(n, at)
        assert found >= 0, f"{n!r} not found after {needles[:needles.index(n)]}: {log[-4000:]}"
        at = found + len(n)


def test_training_goes_on_while_a_checkpoint_uploads_and_the_next_save_waits_for_it(dataset, tmp_path):
    run = tmp_path / "run"
    # the store takes step 4's files only once the trainer has logged step 8: had the upload stayed
    # inside the save, step 5 would never come (the hold then ends after hold_max_s, and this fails)
    held = lambda key: "/step-000000004/" in key and max(metrics(run), default=0) < 8  # noqa: E731
    with SlowS3(hold=held, hold_max_s=90) as s3:
        proc = _train(run, dataset, s3, "train.steps=10")
        assert proc.returncode == 0, proc.stderr[-5000:]
        keys = s3.keys(PREFIX)
        events = [(what, key) for _, what, key in s3.events if "/step-000000004/" in key]
    m = metrics(run)
    assert [m[s]["checkpoint_uploading"] for s in range(1, 9)] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert all(m[s]["checkpoint_upload_failures"] == 0 for s in m)
    err = proc.stderr
    # step 4's marker could only go once every rank had reported its files, and that is known at
    # the next per-step all-reduce: here, inside the save at step 8, which therefore waited
    _in_order(err, "uploading step-000000004", "uploaded step-000000004, complete in object storage at step 8 "
              "(", "s, steps 5-8 trained meanwhile)", "checkpoint: step 8 committed")
    # the last checkpoint's upload is waited for before the process exits
    _in_order(err, "done: 10 steps", "uploaded step-000000010")
    for step in (4, 8, 10):
        assert f"{PREFIX}/step-{step:09d}/checkpoint.json" in keys
    # the marker last: before it, the store holds no complete checkpoint
    assert events[-1] == ("PUT", f"{PREFIX}/step-000000004/checkpoint.json")
    assert len(events) == len([k for k in keys if "/step-000000004/" in k])


def test_a_refused_upload_is_retried_then_reported_and_an_empty_disk_resumes_from_the_last_complete_one(
        dataset, tmp_path):
    run = tmp_path / "run"
    refused: dict[str, int] = {}

    def refuse(key: str) -> bool:
        """The rank-1 shard of step 8 refused once (a passing error), of steps 4 and 12 every time."""
        if key.endswith("/__1_0.distcp"):
            refused[key] = refused.get(key, 0) + 1
            return "/step-000000008/" not in key or refused[key] == 1
        return False

    with SlowS3(refuse=refuse) as s3:
        proc = _train(run, dataset, s3, "train.steps=12")
        keys = s3.keys(PREFIX)
        err = proc.stderr
        assert proc.returncode != 0, "the last checkpoint is not in object storage: the job must show it"
        assert refused == {f"{PREFIX}/step-{s:09d}/__1_0.distcp": n for s, n in ((4, 3), (8, 2), (12, 3))}
        _in_order(err, "upload of step-000000004 FAILED at step ", f"rank 0: s3://@checkpoints/{PREFIX}/"
                  "step-000000004/__1_0.distcp: S3UploadFailedError", "(AccessDenied)", "(3 tries)",
                  "the local checkpoint stays in",
                  f"upload of s3://@checkpoints/{PREFIX}/step-000000008/__1_0.distcp failed (try 1 of 3): "
                  "S3UploadFailedError", "uploaded step-000000008, complete in object storage",
                  "error: the last checkpoint step-000000012 could not be uploaded", "2 failed upload(s)")
        m = metrics(run)
        # step 4's failure is agreed on by the save at step 8 at the latest: every later line counts it
        assert [m[s]["checkpoint_upload_failures"] for s in (1, 4, 9, 12)] == [0, 0, 1, 1]
        for step in (4, 12):  # partly in the store, without a marker: never offered for resume
            assert f"{PREFIX}/step-{step:09d}/__0_0.distcp" in keys
            assert f"{PREFIX}/step-{step:09d}/checkpoint.json" not in keys
        assert f"{PREFIX}/step-000000008/checkpoint.json" in keys
        assert (run / "checkpoints" / "step-000000012" / "checkpoint.json").is_file()  # stays on the disk

        shutil.rmtree(run)  # a fresh node: nothing on the local disk
        s3.refuse = None
        again = _train(run, dataset, s3, "train.steps=12")
        assert again.returncode == 0, again.stderr[-5000:]
        assert f"downloaded step-000000008 files from s3://@checkpoints/{PREFIX}" in again.stderr
        assert "step-000000008 at step 8" in again.stderr
        assert f"{PREFIX}/step-000000012/checkpoint.json" in s3.keys(PREFIX)
    resumed = metrics(run)
    assert sorted(resumed) == [9, 10, 11, 12]
    for s in resumed:  # the same data position, weights, optimizer and RNG: the same numbers
        assert (resumed[s]["loss"], resumed[s]["grad_norm"]) == (m[s]["loss"], m[s]["grad_norm"]), s


def test_a_relaunch_uploads_the_local_checkpoint_that_the_store_lacks(dataset, tmp_path):
    """The exit status of a run whose last upload failed makes the job restart (torchrun
    --max-restarts, the TrainJob's backoff): the relaunch on the same disk finds the checkpoint
    that is not complete in the store and uploads it."""
    run = tmp_path / "run"
    cmd = train_cmd(run, f"data.path={dataset}", *UPLOAD, "train.steps=4")
    with SlowS3(refuse=lambda key: key.endswith("/trainer_state.json")) as s3:
        first = subprocess.run(cmd, cwd=REPO, env=env(**s3.env()), capture_output=True, text=True, timeout=TIMEOUT)
        assert first.returncode == 1, first.stderr[-3000:]
        assert "error: the last checkpoint step-000000004 could not be uploaded" in first.stderr
        assert f"{PREFIX}/step-000000004/checkpoint.json" not in s3.keys(PREFIX)
        s3.refuse = None
        again = subprocess.run(cmd, cwd=REPO, env=env(**s3.env()), capture_output=True, text=True, timeout=TIMEOUT)
        assert again.returncode == 0, again.stderr[-3000:]
        _in_order(again.stderr, "resumed from", "at step 4", "checkpoint: step-000000004 is not complete in "
                  f"s3://@checkpoints/{PREFIX} (an earlier upload failed or was cut short); uploading it again",
                  "run already complete at step 4", "uploaded step-000000004, complete in object storage")
        assert f"{PREFIX}/step-000000004/checkpoint.json" in s3.keys(PREFIX)
