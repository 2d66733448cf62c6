"""The trainer end to end on CPU: two gloo processes sharding a tiny Llama with FSDP2.

One uninterrupted reference run (12 steps, a checkpoint every 4, export at the end) is compared
with runs that are killed with SIGKILL, crash under torchrun --max-restarts, find incomplete
checkpoints, or receive SIGTERM, and with two torchrun "nodes" on one machine, each with its own
disk (per-pod emptyDirs). About three minutes on 2 cores.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from workloads_fakes import REPO, env, metrics, process_tree, train_cmd  # noqa: E402

STEPS = ["train.steps=12", "checkpoint.every=4"]
TIMEOUT = 300


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, **kw)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("reference") / "run"
    _run(train_cmd(run, *STEPS, nproc=2), env=env())
    return run


def _same_losses(reference: Path, run: Path, steps) -> float:
    ref, got = metrics(reference), metrics(run)
    worst = 0.0
    for s in steps:
        assert s in got, f"step {s} missing from {run}/metrics.jsonl"
        worst = max(worst, abs(ref[s]["loss"] - got[s]["loss"]), abs(ref[s]["grad_norm"] - got[s]["grad_norm"]))
    return worst


def test_two_process_fsdp_training_lowers_the_loss(reference):
    log = (reference / "train.log").read_text()
    assert "FSDP2 over 2 process(es) on cpu, this rank holds 82,080 (50.0%)" in log  # real sharding
    m = metrics(reference)
    assert sorted(m) == list(range(1, 13))
    assert m[12]["loss"] < m[1]["loss"] - 1.0, (m[1]["loss"], m[12]["loss"])
    rec = m[12]
    assert set(rec) >= {"step", "loss", "grad_norm", "lr", "tokens_per_s", "tokens_per_s_per_device", "mfu",
                        "mem_max_rss_gib"}
    assert rec["tokens_per_s"] > 0 and rec["mfu"] is None  # no honest CPU peak
    final = reference / "checkpoints" / "step-000000012"
    assert {p.name for p in final.glob("*.distcp")} == {"__0_0.distcp", "__1_0.distcp"}  # one shard per rank
    assert sorted(p.name for p in (reference / "checkpoints").iterdir()) == ["step-000000008", "step-000000012"]
    assert (reference / "config.json").is_file()


def test_the_export_loads_with_plain_transformers_and_gives_the_same_logits(reference, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    export = reference / "export"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in export.iterdir()}
    probe = torch.load(reference / "export_probe.pt")
    model = AutoModelForCausalLM.from_pretrained(str(export))
    with torch.no_grad():
        logits = model(input_ids=probe["input_ids"]).logits
    assert (logits - probe["logits"]).abs().max().item() <= 1e-6
    tok = AutoTokenizer.from_pretrained(str(export))
    assert tok.decode(tok("Le chat regarde la ville.").input_ids, skip_special_tokens=True) == "Le chat regarde la ville."
    # the same directory made afterwards from the sharded checkpoint, in one process
    _run([os.sys.executable, "-m", "workloads.train.export", str(reference / "checkpoints" / "step-000000012"),
          str(tmp_path / "hf")], env=env())
    from safetensors.torch import load_file

    a, b = load_file(str(export / "model.safetensors")), load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sigkill_mid_run_then_resume_gives_the_same_loss_at_every_later_step(reference, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(train_cmd(run, *STEPS, "export.at_end=false", nproc=2), cwd=REPO, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    while max(metrics(run), default=0) < 6:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victims = process_tree(proc.pid)
    assert len(victims) >= 3, victims  # torchrun and its two workers
    for pid in victims:  # no chance to clean up, no checkpoint on the way out
        os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=60)
    time.sleep(0.5)
    killed_at = max(metrics(run))
    assert killed_at < 12
    resumed = _run(train_cmd(run, *STEPS, "export.at_end=false", nproc=2), env=env())
    found = re.search(r"resumed from \S+ at step (\d+)", resumed.stderr)
    assert found, resumed.stderr[-3000:]
    start = int(found.group(1))
    assert 4 <= start <= killed_at
    assert _same_losses(reference, run, range(start + 1, 13)) <= 1e-6


def test_a_crash_heals_under_torchrun_max_restarts(reference, tmp_path):
    run = tmp_path / "run"
    proc = _run(train_cmd(run, *STEPS, "export.at_end=false", nproc=2, max_restarts=1),
                env=env(INFRATECH_TRAIN_FAULT="sigkill:6"))  # rank 1 SIGKILLs itself after step 6, once
    assert "resumed from" in proc.stderr and "at step 4" in proc.stderr
    assert _same_losses(reference, run, range(1, 13)) == 0.0  # bitwise


def test_incomplete_checkpoints_are_skipped_with_a_log_line(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    ckpts = run / "checkpoints"
    shutil.rmtree(run / "export")
    # step 12: committed but one byte of a shard flipped; step 16: no marker; a never-renamed staging dir
    shard = ckpts / "step-000000012" / "__1_0.distcp"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    shutil.copytree(ckpts / "step-000000008", ckpts / "step-000000016")
    (ckpts / "step-000000016" / "checkpoint.json").unlink()
    (ckpts / ".staging-step-000000020").mkdir()
    proc = _run(train_cmd(run, "train.steps=12", "checkpoint.every=4", "export.at_end=false", nproc=2), env=env())
    err = proc.stderr
    assert "ignoring incomplete checkpoint .staging-step-000000020 (never committed)" in err
    assert "skipping incomplete checkpoint step-000000016: no checkpoint.json" in err
    assert "skipping incomplete checkpoint step-000000012: __1_0.distcp sha256 does not match" in err
    assert "resumed from" in err and "step-000000008 at step 8" in err
    assert _same_losses(reference, run, range(9, 13)) == 0.0


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(train_cmd(run, "train.steps=10000", "checkpoint.every=5000"), cwd=REPO, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while max(metrics(run), default=0) < 3:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    step = max(metrics(run))
    assert f"SIGTERM: checkpoint saved at step {step}; exiting cleanly" in err
    assert (run / "checkpoints" / f"step-{step:09d}" / "checkpoint.json").is_file()
    assert "Traceback" not in err


def test_checkpoints_go_to_object_storage_and_a_fresh_disk_resumes_from_there(tmp_path):
    run = tmp_path / "run"
    s3 = env(AWS_ENDPOINT_URL=f"file://{tmp_path / 's3'}", S3_BUCKET_CHECKPOINTS="team-a-checkpoints")
    args = ["checkpoint.every=4", "checkpoint.upload=s3://@checkpoints/runs/tiny", "export.at_end=false"]
    _run(train_cmd(run, "train.steps=8", *args), env=s3)
    remote = tmp_path / "s3" / "team-a-checkpoints" / "runs" / "tiny"
    assert sorted(p.name for p in remote.iterdir()) == ["step-000000004", "step-000000008"]
    assert (remote / "step-000000008" / "checkpoint.json").is_file()
    shutil.rmtree(run / "checkpoints")  # a new pod: empty local disk
    proc = _run(train_cmd(run, "train.steps=10", *args), env=s3)
    assert "downloaded step-000000008" in proc.stderr and "at step 8" in proc.stderr
    assert max(metrics(run)) == 10


def test_continued_pretraining_starts_from_an_exported_model(reference, tmp_path):
    args = [f"model.init_from={reference / 'export'}", f"data.path={reference / 'data'}", "train.steps=2",
            "export.at_end=false"]
    proc = _run(train_cmd(tmp_path / "run", *args), env=env())
    assert f"model: weights from {reference / 'export'}" in proc.stderr
    # trained weights, not a fresh init: the first loss is near the reference's last, far below ln(512)
    assert metrics(tmp_path / "run")[1]["loss"] < metrics(reference)[12]["loss"] + 0.3
    bad = subprocess.run([os.sys.executable, "-m", "workloads.train", "--recipe", "llama_1b", *args[:2],
                          f"run.dir={tmp_path / 'bad'}"], cwd=REPO, env=env(), capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "does not match the recipe's architecture: model.arch.vocab_size: recipe 65024, checkpoint 512" in bad.stderr


@pytest.fixture
def launched():
    """Launched process trees, killed at the end if still running (a node whose peer died would
    otherwise wait for the process-group timeout)."""
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            for pid in process_tree(p.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _two_nodes(tmp_path: Path, data: Path, *overrides: str, extra_env: dict, launched: list) -> list:
    """Two torchrun "nodes" of one process each, each in its own working directory: run.dir is
    relative, so each node has its own disk, as on pods with an emptyDir."""
    port = str(_free_port())
    procs = []
    for node in (0, 1):
        cwd = tmp_path / f"node{node}"
        cwd.mkdir(exist_ok=True)
        cmd = [os.sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
               f"--node-rank={node}", "--master-addr=127.0.0.1", f"--master-port={port}",
               "-m", "workloads.train", "--recipe", "debug_tiny", "run.dir=run", f"data.path={data}", *overrides]
        procs.append(subprocess.Popen(cmd, cwd=cwd, env=env(PYTHONPATH=str(REPO), **extra_env), text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    launched.extend(procs)
    return procs


def _finish(procs) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        _, err = p.communicate(timeout=TIMEOUT)  # on a timeout, the fixture kills what is left
        out.append((p.returncode, err))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_with_their_own_disks_checkpoint_and_resume_at_the_same_step_after_one_loses_its_disk(
        reference, tmp_path, launched):
    data = reference / "data"  # the reference run's prepared dataset, read by both nodes
    s3 = {"AWS_ENDPOINT_URL": f"file://{tmp_path / 's3'}", "S3_BUCKET_CHECKPOINTS": "team-a-checkpoints"}
    args = [*STEPS, "checkpoint.upload=s3://@checkpoints/runs/two-nodes", "export.at_end=false"]
    procs = _two_nodes(tmp_path, data, *args, extra_env=s3, launched=launched)
    deadline = time.monotonic() + TIMEOUT
    while max(metrics(tmp_path / "node0" / "run"), default=0) < 5:
        assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
        time.sleep(0.05)
    for p in procs:  # preemption: the workers get SIGTERM, save at the step they reached, exit 0
        for pid in process_tree(p.pid)[1:]:
            os.kill(pid, signal.SIGTERM)
    for code, err in _finish(procs):
        assert code == 0, err[-4000:]
    stopped = max(metrics(tmp_path / "node0" / "run"))
    assert 5 <= stopped < 12
    name = f"step-{stopped:09d}"
    node0, node1 = (tmp_path / f"node{n}" / "run" / "checkpoints" / name for n in (0, 1))
    assert {p.name for p in node0.glob("*.distcp")} == {"__0_0.distcp"}  # each disk holds its own shard
    assert {p.name for p in node1.glob("*.distcp")} == {"__1_0.distcp"}
    remote = tmp_path / "s3" / "team-a-checkpoints" / "runs" / "two-nodes" / name
    assert {"__0_0.distcp", "__1_0.distcp", ".metadata", "checkpoint.json", "rng-rank-00001.pt"} <= \
        {p.name for p in remote.iterdir()}

    shutil.rmtree(tmp_path / "node1" / "run")  # node 1 comes back on a fresh disk
    (code0, err0), (code1, err1) = _finish(_two_nodes(tmp_path, data, *args, extra_env=s3, launched=launched))
    assert code0 == 0 and code1 == 0, err0[-3000:] + err1[-3000:]
    assert f"{name} at step {stopped}" in err0, err0[-3000:]  # never silently at step 0
    assert "rank 1's copy" in err0  # node 1 fetched what it lacked
    assert sorted(metrics(tmp_path / "node0" / "run")) == list(range(1, 13))
    # the same data, world size and seed as the two-process reference: the same losses
    assert _same_losses(reference, tmp_path / "node0" / "run", range(1, 13)) <= 1e-6


def test_two_nodes_with_their_own_disks_and_no_object_storage_are_refused_at_start(reference, tmp_path, launched):
    results = _finish(_two_nodes(tmp_path, reference / "data", "train.steps=2", "export.at_end=false",
                                 extra_env={}, launched=launched))
    for node, (code, err) in enumerate(results):
        assert code != 0
        # each worker exits 2 with the reason (torchrun then reports the failed worker)
        assert f"error: [rank {node}] checkpoint.dir run/checkpoints is not shared by all ranks (each sees its " \
               "own: ranks [0]; ranks [1]) and checkpoint.upload is not set" in err, err[-3000:]
        assert "/workloads/" not in err.split("exitcode: 2")[0]  # no traceback of ours


def test_hsdp_on_two_nodes_replicates_across_them_and_trains_like_fsdp(reference, tmp_path, launched):
    """Two "nodes" of one process: HSDP shards within a node (here: one process, all of it) and
    replicates across nodes; the losses are those of the FSDP reference."""
    run = tmp_path / "shared-run"  # one directory for both: this test is about the mesh
    results = _finish(_two_nodes(tmp_path, reference / "data", *STEPS, "export.at_end=false", "train.sharding=hsdp",
                                 f"run.dir={run}", extra_env={}, launched=launched))
    for code, err in results:
        assert code == 0, err[-4000:]
    log = (run / "train.log").read_text()
    assert "HSDP: sharded over 1, replicated 2x on cpu, this rank holds 164,160 (100.0%)" in log
    assert _same_losses(reference, run, range(1, 13)) <= 1e-5
