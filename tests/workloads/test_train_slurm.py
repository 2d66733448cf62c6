"""The trainer under Slurm: the rendezvous from the ``SLURM_*`` variables srun sets.

The variables are those srun gives the tasks of a step (slurm.schedmd.com/srun.html, OUTPUT
ENVIRONMENT VARIABLES); no slurmd runs here, so the two tasks of a 2-task allocation on one node
are started with exactly those variables, as srun would start them. About two minutes on 2 cores.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from workloads.errors import UserError
from workloads.train import slurm

TIMEOUT = 300


@pytest.mark.parametrize(
    "nodelist, expanded",
    [
        ("slurm-h100-0", ["slurm-h100-0"]),
        ("gpu-[01-03,07],login-0", ["gpu-01", "gpu-02", "gpu-03", "gpu-07", "login-0"]),
        ("rack[1-2]-n[8-9]", ["rack1-n8", "rack1-n9", "rack2-n8", "rack2-n9"]),
        ("slurm-h100-[9-10]", ["slurm-h100-9", "slurm-h100-10"]),
    ],
)
def test_hostlists_expand_as_scontrol_show_hostnames(nodelist, expanded):
    assert slurm.hostnames(nodelist) == expanded


def test_tasks_per_node_expand():
    assert slurm.tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    with pytest.raises(UserError, match="'2x3' is not N or N"):
        slurm.tasks_per_node("2x3")


# what srun sets for task 3 of `srun --nodes 2 --ntasks-per-node 2` in job 1234
STEP = {
    "SLURM_JOB_ID": "1234", "SLURM_STEP_ID": "0", "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
    "SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NUM_NODES": "2",
    "SLURM_STEP_TASKS_PER_NODE": "2(x2)", "SLURM_STEP_NODELIST": "slurm-h100-[0-1]", "SLURM_GPUS_ON_NODE": "2",
}


def test_a_task_gets_torch_variables():
    assert slurm.torch_env(STEP) == {
        "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "slurm-h100-0", "MASTER_PORT": str(15000 + 1234),
    }
    assert slurm.torch_env({**STEP, "MASTER_PORT": "29500"})["MASTER_PORT"] == "29500"


def test_one_torchrun_per_node_gets_its_arguments():
    env = {**STEP, "SLURM_PROCID": "1", "SLURM_LOCALID": "0", "SLURM_STEP_TASKS_PER_NODE": "1(x2)"}
    assert slurm.torchrun_args(env) == [
        "--nnodes", "2", "--node-rank", "1", "--nproc-per-node", "2",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "slurm-h100-0:16234", "--rdzv-id", "1234",
    ]


def test_the_batch_script_itself_is_not_a_task():
    batch = {k: v for k, v in STEP.items() if k != "SLURM_STEP_ID"}  # sbatch's own shell: no step
    assert not slurm.in_srun_step(batch) and slurm.in_srun_step(STEP)


def test_outside_an_allocation_the_cli_says_so():
    proc = subprocess.run([sys.executable, "-m", "workloads.train.slurm", "torchrun-args"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"}, cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert proc.returncode == 2
    assert "SLURM_STEP_NODELIST or SLURM_JOB_NODELIST is not set" in proc.stderr and "Traceback" not in proc.stderr


# -- two tasks of a 2-task allocation train, and resume ---------------------------------------
pytest.importorskip("torch")
from workloads_fakes import REPO, env, metrics  # noqa: E402


def _job_id_with_a_free_port() -> str:
    """A job id whose derived rendezvous port is free on this machine now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert slurm.PORT_BASE <= port < slurm.PORT_BASE + slurm.PORT_SPAN, port
    return str(port - slurm.PORT_BASE)


def _two_tasks(run: Path, *overrides: str) -> list[str]:
    job = _job_id_with_a_free_port()
    procs = []
    for task in (0, 1):
        variables = {
            "SLURM_JOB_ID": job, "SLURM_STEP_ID": "0", "SLURM_PROCID": str(task), "SLURM_LOCALID": str(task),
            "SLURM_NODEID": "0", "SLURM_NTASKS": "2", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NUM_NODES": "1",
            "SLURM_STEP_TASKS_PER_NODE": "2", "SLURM_STEP_NODELIST": "localhost", "SLURM_JOB_NODELIST": "localhost",
        }
        e = env(**variables)
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            e.pop(name, None)  # only what srun sets
        cmd = [sys.executable, "-m", "workloads.train", "--recipe", "debug_tiny", f"run.dir={run}", *overrides]
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    errs = []
    for p in procs:
        _, err = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0, err[-4000:]
        errs.append(err)
    return errs


def test_two_srun_tasks_shard_the_model_then_resume_from_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = ["train.steps=8", "checkpoint.every=4", "export.at_end=false"]
    _two_tasks(run, *args)
    log = (run / "train.log").read_text()
    assert "FSDP2 over 2 process(es) on cpu, this rank holds 82,080 (50.0%)" in log
    first = metrics(run)
    assert sorted(first) == list(range(1, 9))
    assert {p.name for p in (run / "checkpoints" / "step-000000008").glob("*.distcp")} == {"__0_0.distcp", "__1_0.distcp"}

    # the job is requeued after its last checkpoint was lost: it resumes from step 4
    shutil.rmtree(run / "checkpoints" / "step-000000008")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("".join(l + "\n" for l in lines if int(re.search(r'"step": (\d+)', l).group(1)) <= 4))
    errs = _two_tasks(run, *args)
    assert any(re.search(r"resumed from \S+step-000000004 at step 4", e) for e in errs), errs[0][-3000:]
    again = metrics(run)
    assert sorted(again) == list(range(1, 9))
    for step in range(5, 9):  # the same run: bitwise the same losses after the resume
        assert again[step]["loss"] == first[step]["loss"], step


# -- the example batch script, with srun replaced by a stand-in --------------------------------
# No slurmd can run here. The stand-in does what srun does for `srun bash -c CMD` in an allocation
# of two nodes with one task each: it starts CMD once per node, with the variables srun gives a
# task (and the batch script's environment), and fails when a task fails (--kill-on-bad-exit).
SRUN_STAND_IN = '''#!{python}
import os, subprocess, sys
args = [a for a in sys.argv[1:] if not a.startswith("--kill-on-bad-exit")]
nodes = ["localhost", "127.0.0.1"]
procs = []
for node, _ in enumerate(nodes):
    env = dict(os.environ, SLURM_STEP_ID="0", SLURM_NODEID=str(node), SLURM_PROCID=str(node), SLURM_LOCALID="0",
               SLURM_STEP_NUM_NODES="2", SLURM_STEP_NUM_TASKS="2", SLURM_STEP_TASKS_PER_NODE="1(x2)",
               SLURM_STEP_NODELIST=",".join(nodes), SCRATCH=os.path.join(os.environ["STAND_IN_DISKS"], f"node{{node}}"))
    procs.append(subprocess.Popen(args, env=env))
codes = [p.wait() for p in procs]
sys.exit(max(codes))
'''


def _sbatch(tmp_path: Path, steps: int) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    srun = bin_dir / "srun"
    srun.write_text(SRUN_STAND_IN.format(python=sys.executable))
    srun.chmod(0o755)
    variables = {  # what sbatch gives the batch script of a 2-node allocation
        "SLURM_JOB_ID": _job_id_with_a_free_port(), "SLURM_JOB_NAME": "tiny", "SLURM_NNODES": "2",
        "SLURM_JOB_NODELIST": "localhost,127.0.0.1", "SLURM_PROCID": "0",
    }
    e = env(PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHON=sys.executable, PYTHONPATH=str(REPO), STEPS=str(steps),
            EVERY="2", STAND_IN_DISKS=str(tmp_path / "disks"), AWS_ENDPOINT_URL=f"file://{tmp_path / 's3'}",
            S3_BUCKET_CHECKPOINTS="team-checkpoints", S3_BUCKET_DATASETS="team-datasets", INFRATECH_NPROC_PER_NODE="1",
            **variables)
    script = REPO / "examples" / "slurm" / "train-tiny.sbatch"
    return subprocess.run(["bash", str(script)], cwd=REPO, env=e, capture_output=True, text=True, timeout=TIMEOUT)


def test_the_example_batch_script_trains_on_two_nodes_and_resumes_from_the_bucket(tmp_path):
    first = _sbatch(tmp_path, steps=4)
    assert first.returncode == 0, first.stderr[-5000:]
    run = tmp_path / "disks" / "node0" / "runs" / "tiny"
    assert "FSDP2 over 2 process(es) on cpu" in (run / "train.log").read_text()
    remote = tmp_path / "s3" / "team-checkpoints" / "pretraining" / "tiny"
    assert sorted(p.name for p in remote.iterdir()) == ["step-000000002", "step-000000004"]
    # the job runs again on fresh nodes (requeued, or submitted again with the same name)
    shutil.rmtree(tmp_path / "disks")
    again = _sbatch(tmp_path, steps=6)
    assert again.returncode == 0, again.stderr[-5000:]
    assert "downloaded step-000000004" in again.stderr and "at step 4" in again.stderr, again.stderr[-3000:]
    assert sorted(metrics(run)) == [5, 6]
