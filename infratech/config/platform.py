"""What the platform installs: ``platform:`` (component switches and their settings)."""

from __future__ import annotations

import re

from typing import Any, Optional

from pydantic import Field, field_validator, model_validator

from .. import imageref
from ..images.spec import VERSION as IMAGE_VERSION
from .common import _Model
from .slurm import Slurm

# a registry and optional path, as image references start: no scheme, no trailing slash, no tag
_REGISTRY = re.compile(r"[a-z0-9.-]+\.[a-z]{2,63}(:\d+)?(/[a-z0-9._-]+)*|(localhost|127\.0\.0\.1):\d+(/[a-z0-9._-]+)*")


PLATFORM_NAMESPACES = (
    "gpu-operator", "kueue-system", "jobset-system", "kubeflow-system", "csi-s3", "monitoring",
    "keda", "cert-manager", "serving", "slinky", "slurm", "default", "kube-system", "kube-public", "kube-node-lease",
)


class Acme(_Model):
    """An ACME certificate authority for the serving endpoint's TLS certificate."""

    email: str
    server: str

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
            raise ValueError("must be an e-mail address (the CA writes there before certificates expire)")
        return v

    @field_validator("server")
    @classmethod
    def _server(cls, v: str) -> str:
        if not re.match(r"^https://[^/\s]+/", v):
            raise ValueError("must be the https:// URL of the ACME directory")
        return v


class Platform(_Model):
    """What the platform layer installs on the cluster (docs/platform.md)."""

    gpu_operator: bool = True
    kueue: bool = True
    trainer: bool = True
    storage: bool = True
    monitoring: bool = True
    tenancy: bool = True
    serving: bool = True
    # the registry the cluster pulls the workload images from (`infratech images push STACK` fills
    # it), e.g. rg.fr-par.scw.cloud/infratech-souveraine; when set, training_image defaults to it
    image_registry: Optional[str] = None
    # the image of the ClusterTrainingRuntime's trainer container (`make images`, docs/images.md)
    training_image: str = "ghcr.io/infratech-souveraine/llm-train:0.1.0"
    # NVIDIA driver the GPU operator installs where the nodes have none (OVHcloud MKS)
    gpu_driver_version: str = "595.91.07"
    # serving endpoint: DNS name, TLS from ACME or else from the cluster's own CA
    serving_host: Optional[str] = None
    ingress_class: Optional[str] = None
    # where the ingress controller's pods run: the only peers that reach the serving namespace
    ingress_namespace: str = "ingress-nginx"
    acme: Optional[Acme] = None
    # jobs of a team pending longer than this raise an alert
    pending_alert_minutes: int = Field(default=60, ge=5, le=10080, strict=True)
    # Slurm (Slinky) on the pools with role slurm; absent: no Slurm (docs/slurm.md)
    slurm: Optional[Slurm] = None

    @model_validator(mode="before")
    @classmethod
    def _training_image_in_registry(cls, data: Any) -> Any:
        registry = data.get("image_registry") if isinstance(data, dict) else None
        if isinstance(registry, str) and _REGISTRY.fullmatch(registry) and "training_image" not in data:
            return {**data, "training_image": f"{data['image_registry'].rstrip('/')}/llm-train:{IMAGE_VERSION}"}
        return data

    @field_validator("image_registry")
    @classmethod
    def _registry(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _REGISTRY.fullmatch(v):
            raise ValueError("must be a registry host with an optional path and no scheme or tag, "
                             "e.g. rg.fr-par.scw.cloud/infratech-souveraine")
        return v

    @field_validator("training_image")
    @classmethod
    def _image(cls, v: str) -> str:
        imageref.parse(v)
        return v

    @field_validator("gpu_driver_version", mode="before")
    @classmethod
    def _driver(cls, v: Any) -> str:
        if not isinstance(v, str) or not re.fullmatch(r"\d{3}\.\d+(\.\d+)?", v):
            raise ValueError("must be an NVIDIA driver version such as \"595.91.07\" (in quotes)")
        return v

    @field_validator("serving_host")
    @classmethod
    def _host(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}", v):
            raise ValueError("must be a fully qualified DNS name in lower case, e.g. llm.example.org")
        return v

    @model_validator(mode="after")
    def _needs(self) -> "Platform":
        problems = []
        if self.trainer and not self.kueue:
            problems.append("trainer needs kueue: training jobs are admitted by the teams' queues")
        if self.acme is not None and self.serving_host is None:
            problems.append("acme needs serving_host: the certificate is for that name")
        if problems:
            raise ValueError("; ".join(problems))
        return self
