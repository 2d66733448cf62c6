"""Job files: what a researcher writes to train, evaluate or serve, validated before anything else.

A job file is a small YAML mapping (``examples/jobs/``): the job's name and team, how sensitive its
data is, and what to run. Every problem is reported at once, each with the field's path, in the
words of someone writing YAML (``gpus.per_node: must be a whole number``); an unknown field lists
the fields allowed there, so a typo never passes silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from workloads.serve.profile import cluster_profiles

from ... import imageref
from ...validation import problems

CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_OVERRIDE_KEY = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


class JobFileError(Exception):
    """A job file that cannot be submitted; ``problems`` are ``field: message`` lines."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        n = len(problems)
        super().__init__(f"{source}: {n} problem{'s' if n != 1 else ''}\n" + "\n".join(f"  {p}" for p in problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _name(v: str, limit: int) -> str:
    if not _NAME.match(v) or len(v) > limit:
        raise ValueError(f"must be a DNS label of at most {limit} characters: lower-case letters, digits and '-', starting with a letter")
    return v


def _s3(v: str) -> str:
    if not v.startswith("s3://") or len(v) <= len("s3://"):
        raise ValueError("must be an s3:// location (s3://@checkpoints/… names the stack's checkpoints bucket)")
    return v.rstrip("/")


class Image(_Model):
    """A pinned image, split for the charts' ``image.repository``/``tag``/``digest``."""

    repository: str
    tag: str = ""
    digest: str = ""

    @classmethod
    def parse(cls, ref: str) -> "Image":
        parsed = imageref.parse(ref)
        return cls(repository=parsed.repository, tag=parsed.tag, digest=parsed.digest)


def _image(v: Optional[str]) -> Optional[str]:
    if v is not None:
        Image.parse(v)
    return v


class Resources(_Model):
    """CPU and memory besides the GPUs: requests, and a memory limit."""

    cpu: Optional[Union[str, int]] = None
    memory: Optional[str] = None
    memory_limit: Optional[str] = None

    @field_validator("cpu", "memory", "memory_limit")
    @classmethod
    def _quantity(cls, v):
        if v is not None and not _QUANTITY.match(str(v)):
            raise ValueError("must be a Kubernetes quantity such as 8, 500m, 64Gi")
        return v

    def values(self, defaults: dict) -> dict:
        """The chart's ``resources`` with these settings over the chart's defaults."""
        requests = dict(defaults.get("requests", {}))
        limits = dict(defaults.get("limits", {}))
        if self.cpu is not None:
            requests["cpu"] = str(self.cpu)
        if self.memory is not None:
            requests["memory"] = self.memory
        if self.memory_limit is not None:
            limits["memory"] = self.memory_limit
        return {"requests": requests, "limits": limits}


class _Job(_Model):
    """What every job file says: its name, its team, how sensitive its data is."""

    name: str
    team: str
    data_classification: Literal["public", "internal", "confidential", "restricted"]
    image: Optional[str] = None
    resources: Optional[Resources] = None
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("team")
    @classmethod
    def _team(cls, v: str) -> str:
        if not _LABEL.match(v):
            raise ValueError("must be a team name as in the stack (lower-case letters, digits and '-')")
        return v

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: Optional[str]) -> Optional[str]:
        return _image(v)

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k)]
        if bad:
            raise ValueError(f"variable names must be letters, digits and '_': {', '.join(bad)}")
        return v


class TrainGpus(_Model):
    model: Optional[str] = None  # None: the stack's training pool's model
    per_node: int = Field(1, ge=1, le=16, strict=True)


class Gpus(_Model):
    model: Optional[str] = None  # None: the stack's pool for that role
    count: int = Field(1, ge=0, le=16, strict=True)


class TrainJob(_Job):
    """``infratech submit train``: a recipe of workloads.train on N nodes x G GPUs."""

    recipe: str
    overrides: dict[str, Union[str, int, float, bool]] = Field(default_factory=dict)
    data: Optional[str] = None
    checkpoint: Optional[str] = None  # None: s3://@checkpoints/<team>/<name>
    nodes: int = Field(1, ge=1, le=1024, strict=True)
    gpus: TrainGpus = TrainGpus()
    max_restarts: int = Field(3, ge=0, le=100, strict=True)
    priority: Optional[str] = None
    deadline_hours: Optional[float] = Field(None, gt=0)

    @field_validator("name")
    @classmethod
    def _job_name(cls, v: str) -> str:
        return _name(v, 40)

    @field_validator("recipe")
    @classmethod
    def _recipe(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", v):
            raise ValueError("must be a recipe name of workloads.train (python -m workloads.train --list-recipes)")
        return v

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, v: dict) -> dict:
        bad = [k for k in v if not _OVERRIDE_KEY.match(k)]
        if bad:
            raise ValueError(f"keys are dotted recipe keys such as train.steps: {', '.join(bad)}")
        owned = sorted(set(v) & {"run.dir", "checkpoint.upload", "data.path"})
        if owned:
            raise ValueError(f"{', '.join(owned)}: set by the platform from `checkpoint` and `data`; use those fields")
        return v

    @field_validator("checkpoint", "data")
    @classmethod
    def _location(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else _s3(v)

    @field_validator("priority")
    @classmethod
    def _priority(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _LABEL.match(v):
            raise ValueError("must be the name of a Kueue WorkloadPriorityClass")
        return v

    def override_args(self) -> dict[str, str]:
        """The overrides as the recipe reads them: KEY=VALUE strings (true/false for booleans)."""
        return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in self.overrides.items()}


class EvalJob(_Job):
    """``infratech submit eval``: evaluate a checkpoint and run the promotion gate."""

    checkpoint: str
    suite: Optional[str] = None  # None: the chart's (french)
    tasks: list[str] = Field(default_factory=list)  # empty: the suite's
    backend: Optional[Literal["vllm", "hf"]] = None  # None: the suite's
    heldout: Optional[str] = None
    gpus: Gpus = Gpus()
    gate: dict[str, Any] = Field(default_factory=dict)
    output: Optional[str] = None
    priority: Optional[str] = None

    @field_validator("name")
    @classmethod
    def _job_name(cls, v: str) -> str:
        return _name(v, 52)

    @field_validator("checkpoint", "output", "heldout")
    @classmethod
    def _location(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else _s3(v)

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[0-9]+)?$", t)]
        if bad:
            raise ValueError(f"each task is name or name:shots (e.g. arc_fr:25): {', '.join(bad)}")
        return v

    @field_validator("priority")
    @classmethod
    def _priority(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _LABEL.match(v):
            raise ValueError("must be the name of a Kueue WorkloadPriorityClass")
        return v

    @field_validator("gpus")
    @classmethod
    def _cpu_needs_hf(cls, v: Gpus, info: ValidationInfo) -> Gpus:
        if v.count == 0 and info.data.get("backend") != "hf":
            raise ValueError("count 0 (a CPU evaluation) needs backend: hf; vLLM needs a GPU")
        return v


class Replicas(_Model):
    min: int = Field(1, ge=1, strict=True)
    max: int = Field(3, ge=1, strict=True)
    autoscale: bool = True

    @model_validator(mode="after")
    def _order(self) -> "Replicas":
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class ServeJob(_Job):
    """``infratech submit serve``: serve a promoted checkpoint with vLLM behind the gateway."""

    model: str
    profile: str  # a GPU serving profile of workloads/serve/profiles: vLLM's flags
    served_name: Optional[str] = None  # None: the job's name
    gpus: Gpus = Gpus()
    replicas: Replicas = Replicas()
    api_key_secret: str = "llm-gateway-api-key"
    namespace: Optional[str] = None  # None: the stack's serving namespace
    force_unpromoted: Optional[str] = None  # a reason: serve although the gate said no

    @field_validator("name")
    @classmethod
    def _job_name(cls, v: str) -> str:
        return _name(v, 47)

    @field_validator("model")
    @classmethod
    def _location(cls, v: str) -> str:
        return _s3(v)

    @field_validator("profile")
    @classmethod
    def _profile(cls, v: str) -> str:
        known = cluster_profiles()
        if v not in known:
            raise ValueError(f"must be a serving profile for GPUs: {', '.join(known)} "
                             "(workloads/serve/profiles, docs/serving.md)")
        return v

    @field_validator("api_key_secret", "namespace")
    @classmethod
    def _dns(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _LABEL.match(v):
            raise ValueError("must be a Kubernetes name (lower-case letters, digits and '-')")
        return v

    @field_validator("force_unpromoted")
    @classmethod
    def _reason(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and len(v.strip()) < 20:
            raise ValueError("write out why an unpromoted checkpoint is served (20 characters or more)")
        return v

    @field_validator("gpus")
    @classmethod
    def _gpus(cls, v: Gpus) -> Gpus:
        if v.count < 1:
            raise ValueError("count must be at least 1: vLLM serves on GPUs")
        return v


KINDS: dict[str, type[_Job]] = {"train": TrainJob, "eval": EvalJob, "serve": ServeJob}

# fields whose values are not echoed back in an error: environment variables may carry a token
_SECRET_FIELDS = ("env",)

def parse(kind: str, data: Any, source: str = "job file"):
    """The job of ``kind`` (train, eval, serve) from a parsed YAML document, or JobFileError."""
    model = KINDS[kind]
    if not isinstance(data, dict):
        raise JobFileError(source, [f"(file): must be a mapping of fields ({', '.join(sorted(model.model_fields))})"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise JobFileError(source, [p.line() for p in problems(exc, model, secret_keys=_SECRET_FIELDS)]) from None


def load(kind: str, path: Path):
    """The job of ``kind`` read from ``path``."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise JobFileError(str(path), [f"(file): cannot be read ({exc.strerror})"]) from None
    except yaml.YAMLError as exc:
        raise JobFileError(str(path), [f"(file): not valid YAML ({exc})"]) from None
    return parse(kind, data, str(path))
