"""Train a Llama-architecture model from a recipe.

    python -m workloads.train --recipe NAME [KEY=VALUE ...]
    python -m workloads.train --list-recipes
    python -m workloads.train --recipe NAME --print-config [KEY=VALUE ...]

Only the keys printed by ``--list-recipes`` can be overridden; the rest is the recipe's. The
resolved configuration is written to ``<run.dir>/config.json``; metrics to
``<run.dir>/metrics.jsonl``; checkpoints to ``<run.dir>/checkpoints``; the Hugging Face export to
``<run.dir>/export``. Launching again with the same ``run.dir`` resumes from the last complete
checkpoint.

CPU, one process (seconds)::

    python -m workloads.train --recipe debug_tiny

CPU, two processes sharding the model (gloo)::

    torchrun --standalone --nproc-per-node 2 -m workloads.train --recipe debug_tiny run.dir=build/runs/tiny2

One GPU::

    torchrun --standalone --nproc-per-node 1 -m workloads.train --recipe llama_1b \\
        data.path=s3://@datasets/packed/lucie-65k-seq4096 run.dir=/scratch/runs/llama_1b

Many nodes (per node; on the cluster the Kubeflow TrainJob sets the PET_* rendezvous variables and
the command the TrainJob gives the image), resuming after failures::

    TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun --nnodes 8 --nproc-per-node 8 --max-restarts 3 \\
        --rdzv-backend c10d --rdzv-endpoint $MASTER_ADDR:29500 --rdzv-id lucie7b \\
        -m workloads.train --recipe lucie_7b run.dir=/scratch/runs/lucie_7b \\
        checkpoint.upload=s3://@checkpoints/lucie_7b
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", help="debug_tiny, llama_1b or lucie_7b")
    p.add_argument("--list-recipes", action="store_true", help="recipes and the overridable keys")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. train.steps=100 run.dir=/tmp/run")
    return p


def _list() -> str:
    from . import recipes
    from .config import OVERRIDABLE

    lines = ["recipes:"]
    lines += [f"  {name:<11} {recipes.summary(name)}" for name in recipes.RECIPES]
    lines.append("overridable keys (KEY=VALUE; 'none' clears an optional value):")
    lines += [f"  {key:<32} {doc}" for key, doc in OVERRIDABLE.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    world = 0  # set once the process group exists: errors after that may be one rank's alone
    try:
        if args.list_recipes:
            print(_list())
            return 0
        if not args.recipe:
            raise UserError("--recipe is required; " + _list().replace("\n", "\n  "))
        from . import recipes
        from .config import apply_overrides

        cfg = apply_overrides(recipes.get(args.recipe), args.overrides)
        if args.print_config:
            print(cfg.to_json(), end="")
            return 0
        from .distributed import setup, teardown
        from .trainer import Trainer, preflight

        preflight(cfg)
        d = setup(cfg.train.device, sharding=cfg.train.sharding)
        rank, world = d.rank, d.world
        clean = False
        try:
            code = Trainer(cfg, d).fit()
            clean = True
            return code
        finally:
            if clean:
                teardown()
            else:
                import torch.distributed as dist

                if dist.is_initialized():
                    dist.destroy_process_group()
    except UserError as exc:
        if world > 1:  # e.g. a corrupted shard only this rank reads
            print(f"error: [rank {rank}] {exc}", file=sys.stderr)
        elif rank == 0:
            print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
