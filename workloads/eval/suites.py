"""Evaluation suites: which tasks, how many shots, which backend settings. Read once, typed, frozen.

A suite is a YAML file: a name from ``suites/`` beside this file (``cpu_smoke``, ``french``) or a
path. Tasks are lm-evaluation-harness task or group names: upstream ones (``french_bench_arc_challenge``,
``arc_fr``, ``m_mmlu_fr``, ...; their datasets come from the Hugging Face Hub, so a cluster
pre-caches them) and the local ones of ``tasks/`` (``infratech_fr`` and its three subtasks,
whose data ships with the project; ``infratech_french_bench_mc``, a group over FrenchBench's
multiple-choice tasks, whose upstream ``french_bench_mc`` is a tag with no combined score).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import UserError
from ..files import shipped_names, shipped_yaml

SUITES_DIR = Path(__file__).resolve().parent / "suites"
TASKS_DIR = Path(__file__).resolve().parent / "tasks"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(_Strict):
    name: str = Field(min_length=1)
    num_fewshot: Optional[int] = Field(None, ge=0, description="None: the task's own default")


class HeldOut(_Strict):
    max_sequences: int = Field(256, ge=1, description="rows of the held-out dataset scored")
    batch_size: int = Field(8, ge=1)


class HfBackend(_Strict):
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    device: str = "cpu"
    batch_size: Union[int, Literal["auto"]] = 8


class VllmBackend(_Strict):
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "bfloat16"
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.8, gt=0, le=1)
    max_model_len: Optional[int] = Field(None, ge=1)
    batch_size: Union[int, Literal["auto"]] = "auto"


class Suite(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    backend: Literal["hf", "vllm"] = "hf"
    tasks: list[TaskSpec] = Field(min_length=1)
    limit: Optional[int] = Field(None, ge=1, description="items per task (a subset: never for a release)")
    seed: int = 42
    bootstrap_iters: int = Field(1000, ge=0, description="for the stderr of non-mean metrics (perplexity)")
    perplexity: HeldOut = HeldOut()
    hf: HfBackend = HfBackend()
    vllm: VllmBackend = VllmBackend()

    @field_validator("tasks", mode="before")
    @classmethod
    def _names(cls, value):
        return [{"name": t} if isinstance(t, str) else t for t in (value or [])]

    def by_fewshot(self) -> dict[Optional[int], list[str]]:
        """Task names grouped by shot count (lm-eval takes one ``num_fewshot`` per call)."""
        groups: dict[Optional[int], list[str]] = {}
        for t in self.tasks:
            groups.setdefault(t.num_fewshot, []).append(t.name)
        return groups


def available() -> list[str]:
    return shipped_names(SUITES_DIR)


def load(name_or_path: str) -> Suite:
    path = shipped_yaml(name_or_path, SUITES_DIR, "suite")
    try:
        return Suite.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or 'suite'}: {e['msg']}" for e in exc.errors()]
        raise UserError(f"suite {path}: " + "; ".join(lines)) from None
    except yaml.YAMLError as exc:
        raise UserError(f"suite {path}: not valid YAML ({exc})") from None
