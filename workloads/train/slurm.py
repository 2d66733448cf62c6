"""The rendezvous of a training run under Slurm, taken from the ``SLURM_*`` variables srun sets.

Two ways to launch, both in examples/slurm/train-tiny.sbatch:

- one task per GPU, started by srun itself: each task's ``SLURM_PROCID``, ``SLURM_NTASKS``,
  ``SLURM_LOCALID`` become torch's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (:func:`torch_env`,
  applied by ``distributed.setup`` when it finds an srun step and no ``RANK``)::

      srun --ntasks-per-node 4 --gpus-per-task 1 python -m workloads.train --recipe llama_1b ...

- one torchrun per node, started by srun, which starts the node's processes and restarts them after
  a failure (``--max-restarts``) exactly as on Kubernetes (:func:`torchrun_args`)::

      srun --ntasks-per-node 1 bash -c 'torchrun $(python -m workloads.train.slurm torchrun-args) \\
          -m workloads.train --recipe llama_1b ...'

The first node of the step is the rendezvous host; its port is derived from the job id, so every
task of the job computes the same one (``MASTER_PORT`` in the environment wins). Variables:
slurm.schedmd.com/srun.html#SECTION_OUTPUT-ENVIRONMENT-VARIABLES.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

from ..errors import UserError

PORT_BASE, PORT_SPAN = 15000, 50000  # a port in 15000-64999, the same for every task of a job


def hostnames(nodelist: str) -> list[str]:
    """A Slurm hostlist expanded, as ``scontrol show hostnames`` does:
    ``gpu-[01-03,07],login-0`` -> gpu-01, gpu-02, gpu-03, gpu-07, login-0 (zero padding kept)."""
    names: list[str] = []
    for term in re.findall(r"(?:[^,\[]+|\[[^\]]*\])+", nodelist):
        expanded = [""]
        for literal, ranges in re.findall(r"([^\[]*)(?:\[([^\]]*)\])?", term):
            parts = [literal]
            if ranges:
                parts = []
                for item in ranges.split(","):
                    lo, _, hi = item.partition("-")
                    if not lo.isdigit() or (hi and not hi.isdigit()):
                        raise UserError(f"SLURM nodelist {nodelist!r}: {item!r} is not a number or a range of numbers")
                    parts += [literal + str(n).zfill(len(lo)) for n in range(int(lo), int(hi or lo) + 1)]
            expanded = [e + p for e in expanded for p in parts]
        names += [e for e in expanded if e]
    return names


def tasks_per_node(value: str) -> list[int]:
    """``SLURM_STEP_TASKS_PER_NODE`` expanded: ``2(x3),1`` -> [2, 2, 2, 1]."""
    counts: list[int] = []
    for item in value.split(","):
        m = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", item.strip())
        if m is None:
            raise UserError(f"SLURM tasks per node {value!r}: {item!r} is not N or N(xM)")
        counts += [int(m.group(1))] * int(m.group(2) or 1)
    return counts


def _need(env: Mapping[str, str], *names: str) -> str:
    for name in names:
        if env.get(name):
            return env[name]
    raise UserError(f"{' or '.join(names)} is not set: launch the trainer with srun inside a Slurm allocation (examples/slurm/)")


def rendezvous(env: Mapping[str, str]) -> tuple[str, int]:
    """(host, port) every task of the step meets at: the step's first node, a port from the job id."""
    host = hostnames(_need(env, "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST"))[0]
    if env.get("MASTER_PORT"):
        return host, int(env["MASTER_PORT"])
    job = _need(env, "SLURM_JOB_ID", "SLURM_JOBID")
    if not job.isdigit():
        raise UserError(f"SLURM_JOB_ID {job!r} is not a number")
    return host, PORT_BASE + int(job) % PORT_SPAN


def in_srun_step(env: Mapping[str, str]) -> bool:
    """A task srun started (not the batch script itself, where SLURM_PROCID is 0 for one process)."""
    return "SLURM_PROCID" in env and "SLURM_STEP_ID" in env


def torch_env(env: Mapping[str, str]) -> dict[str, str]:
    """torch.distributed's variables for a task srun started, one task per process."""
    host, port = rendezvous(env)
    node = int(_need(env, "SLURM_NODEID"))
    per_node = tasks_per_node(_need(env, "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"))
    if node >= len(per_node):
        raise UserError(f"SLURM_NODEID {node} but tasks per node {per_node} name {len(per_node)} node(s)")
    return {
        "RANK": _need(env, "SLURM_PROCID"),
        "WORLD_SIZE": _need(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"),
        "LOCAL_RANK": _need(env, "SLURM_LOCALID"),
        "LOCAL_WORLD_SIZE": str(per_node[node]),
        "MASTER_ADDR": host,
        "MASTER_PORT": str(port),
    }


def torchrun_args(env: Mapping[str, str]) -> list[str]:
    """torchrun's arguments on one node of a step with one task per node: the node count, this
    node's rank, the processes per node (``INFRATECH_NPROC_PER_NODE``, else the node's GPUs
    ``SLURM_GPUS_ON_NODE``, else one) and the c10d rendezvous."""
    host, port = rendezvous(env)
    nproc = env.get("INFRATECH_NPROC_PER_NODE") or env.get("SLURM_GPUS_ON_NODE") or "1"
    return [
        "--nnodes", _need(env, "SLURM_STEP_NUM_NODES", "SLURM_NNODES"),
        "--node-rank", _need(env, "SLURM_NODEID"),
        "--nproc-per-node", nproc,
        "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"{host}:{port}",
        "--rdzv-id", _need(env, "SLURM_JOB_ID", "SLURM_JOBID"),
    ]


def main(argv: list[str]) -> int:
    if argv != ["torchrun-args"]:
        print("usage: python -m workloads.train.slurm torchrun-args", file=sys.stderr)
        return 2
    try:
        print(" ".join(torchrun_args(os.environ)))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
