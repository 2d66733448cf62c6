"""FSDP2 trainer for Llama-architecture ``transformers`` models.

Entry point: ``python -m workloads.train`` (see ``__main__.py`` for the run book). Modules:
``config`` (the typed tree and CLI overrides), ``recipes/``, ``distributed`` (process group,
device), ``model`` (build, shard, FLOPs), ``optim``, ``loader`` (exact data position),
``checkpoint`` (DCP, atomic commit, retention, upload), ``export`` (HF directory), ``metrics``
(JSON lines, MFU, Prometheus), ``trainer`` (the loop, signals), ``slurm`` (the rendezvous from
srun's ``SLURM_*`` variables).
"""
