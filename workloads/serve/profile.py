"""Serving profiles: how vLLM's OpenAI server runs on one kind of machine. Read once, typed, frozen.

A profile is a YAML file in ``profiles/`` (``cpu``, ``l4``, ``l40s``, ``h100``) or a path; each
setting carries the reasoning for its value in a comment there. ``vllm_args`` turns a profile into
the server's command-line flags; nothing else in the launcher knows vLLM's flag names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import UserError
from ..files import shipped_names, shipped_yaml

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    device: Literal["cuda", "cpu"]
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    served_model_name: Optional[str] = None
    tensor_parallel_size: int = Field(1, ge=1)
    max_model_len: int = Field(ge=16)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    gpu_memory_utilization: Optional[float] = Field(None, gt=0, le=1)
    cpu_kvcache_space_gib: Optional[int] = Field(None, ge=1)
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True
    kv_cache_dtype: Literal["auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"] = "auto"
    max_num_seqs: Optional[int] = Field(None, ge=1)
    max_num_batched_tokens: Optional[int] = Field(None, ge=1)
    chat_template: Optional[str] = Field(None, description="file name in templates/ or a path; None: the model's")
    api_key_file: Optional[str] = Field(None, description="file holding the API key (a mounted Secret)")
    startup_timeout_s: int = Field(900, ge=1)

    @model_validator(mode="after")
    def _device_settings(self):
        if self.device == "cuda" and self.gpu_memory_utilization is None:
            raise ValueError("gpu_memory_utilization is required on cuda")
        if self.device == "cpu":
            if self.gpu_memory_utilization is not None:
                raise ValueError("gpu_memory_utilization is for cuda; on cpu set cpu_kvcache_space_gib")
            if self.tensor_parallel_size != 1:
                raise ValueError("tensor_parallel_size must be 1 on cpu")
        if self.max_num_batched_tokens and self.max_num_seqs and self.max_num_batched_tokens < self.max_num_seqs:
            raise ValueError("max_num_batched_tokens must be at least max_num_seqs")
        return self

    def chat_template_path(self) -> Optional[Path]:
        if not self.chat_template:
            return None
        path = Path(self.chat_template)
        if not path.is_absolute() and not path.exists():
            path = TEMPLATES_DIR / self.chat_template
        if not path.is_file():
            raise UserError(f"profile {self.name}: chat_template {self.chat_template} not found "
                            f"(a path, or a file of {TEMPLATES_DIR})")
        return path


def available() -> list[str]:
    return shipped_names(PROFILES_DIR)


def cluster_profiles() -> list[str]:
    """The shipped GPU profiles: what charts/llm-serve's ``profile`` and ``infratech submit serve``
    accept (the CPU profile is for tests and laptops)."""
    return [name for name in available() if load(name).device == "cuda"]


def load(name_or_path: str, **overrides) -> Profile:
    """A profile by name or path; ``overrides`` (port, host, served_model_name...) replace its values."""
    path = shipped_yaml(name_or_path, PROFILES_DIR, "serving profile")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        data.update({k: v for k, v in overrides.items() if v is not None})
        return Profile.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or 'profile'}: {e['msg']}" for e in exc.errors()]
        raise UserError(f"serving profile {path}: " + "; ".join(lines)) from None


def vllm_args(p: Profile, model_dir: Path, served_name: str, max_model_len: int) -> list[str]:
    """Flags of ``vllm.entrypoints.openai.api_server`` (= ``vllm serve``) for this profile."""
    args = [
        "--model", str(model_dir),
        "--served-model-name", served_name,
        "--host", p.host,
        "--port", str(p.port),
        "--tensor-parallel-size", str(p.tensor_parallel_size),
        "--max-model-len", str(max_model_len),
        "--dtype", p.dtype,
        "--kv-cache-dtype", p.kv_cache_dtype,
        "--enable-prefix-caching" if p.enable_prefix_caching else "--no-enable-prefix-caching",
        "--enable-chunked-prefill" if p.enable_chunked_prefill else "--no-enable-chunked-prefill",
    ]
    if p.gpu_memory_utilization is not None:
        args += ["--gpu-memory-utilization", str(p.gpu_memory_utilization)]
    if p.max_num_seqs:
        args += ["--max-num-seqs", str(p.max_num_seqs)]
    if p.max_num_batched_tokens:
        args += ["--max-num-batched-tokens", str(p.max_num_batched_tokens)]
    template = p.chat_template_path()
    if template:
        args += ["--chat-template", str(template)]
    return args
