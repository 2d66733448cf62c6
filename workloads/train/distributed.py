"""Process group and device: torchrun's environment, or a one-process group when run directly.

CPU uses gloo (two processes on one machine shard the model for real), GPUs use NCCL with one
process per GPU (``LOCAL_RANK`` picks it).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from ..errors import UserError
from . import slurm


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    mesh: DeviceMesh
    control: Optional[dist.ProcessGroup] = None  # gloo group for host-side flags on GPU runs

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        dist.barrier()

    def broadcast_object(self, obj):
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def all_gather_object(self, obj) -> list:
        out = [None] * self.world
        dist.all_gather_object(out, obj, group=self.control)
        return out

    def all_max(self, value: float) -> float:
        return self.all_max_many([value])[0]

    def all_max_many(self, values: list[float]) -> list[float]:
        """On the host: a CUDA tensor here would make every caller wait for the GPU to drain."""
        t = torch.tensor([float(v) for v in values])
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.control)
        return [float(v) for v in t.tolist()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _attempt_store(world: int, timeout_s: int):
    """The store the process group meets in.

    Under torchrun, workers share the agent's TCPStore (``TORCHELASTIC_USE_AGENT_STORE=True``) and
    torch adds no per-attempt prefix: after ``--max-restarts`` restarts the group, ranks read the
    addresses the dead attempt published and fail with "Connection refused" (pytorch/pytorch#135712,
    #167288). Prefixing keys with ``TORCHELASTIC_RESTART_COUNT`` isolates attempts on one node;
    across nodes, where agents can count restarts differently, launch torchrun with
    ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1`` (the training image sets it) and this is not used.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    base = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False,
                         timeout=timedelta(seconds=timeout_s))
    return dist.PrefixStore(f"infratech/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", base)


def _mesh(device: torch.device, world: int, sharding: str) -> DeviceMesh:
    """fsdp: one dimension over every process. hsdp: (nodes, processes per node), so parameters
    are sharded within a node (NVLink) and only gradients cross nodes, once per optimizer step
    (torchrun sets LOCAL_WORLD_SIZE; torch 2.13 fully_shard takes a 2-D mesh as HSDP)."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if sharding == "fsdp":
        return init_device_mesh(device.type, (world,), mesh_dim_names=("dp_shard",))
    if world % local:
        raise UserError(f"train.sharding=hsdp: {world} processes are not whole nodes of {local} (LOCAL_WORLD_SIZE)")
    return init_device_mesh(device.type, (world // local, local), mesh_dim_names=("dp_replicate", "dp_shard"))


def setup(device_pref: str = "auto", timeout_s: int = 1800, sharding: str = "fsdp") -> Dist:
    """Join (or make) the process group and pick this process's device."""
    if "RANK" not in os.environ and slurm.in_srun_step(os.environ):  # one task per process, started by srun
        os.environ.update(slurm.torch_env(os.environ))
    if "RANK" not in os.environ:  # plain `python -m workloads.train`: a group of one
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(_free_port()))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_pref == "cuda" or (device_pref == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise UserError("train.device=cuda but no CUDA device is visible (set train.device=auto or cpu)")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    backend = "nccl" if use_cuda else "gloo"
    kwargs = {"device_id": device} if use_cuda else {}
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s), store=_attempt_store(world, timeout_s),
                            rank=rank, world_size=world, **kwargs)
    mesh = _mesh(device, world, sharding)
    control = dist.new_group(backend="gloo") if use_cuda else None
    return Dist(rank=rank, world=world, local_rank=local_rank, device=device, mesh=mesh, control=control)


def teardown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
