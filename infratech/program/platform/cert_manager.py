"""cert-manager, installed once: by Serving (its gateway certificate) or, where serving is off, by
Slurm (the Slinky operator's webhook certificate). Both call :func:`install`."""

from __future__ import annotations

from typing import Any

import pulumi

from ...config import StackConfig
from .base import Namespace, child_opts
from .charts import PINS, release


def cert_manager_values(cfg: StackConfig) -> dict[str, Any]:
    return {"crds": {"enabled": True, "keep": True}}


def install(cfg: StackConfig, provider, parent: pulumi.Resource, component: str) -> pulumi.Resource:
    """cert-manager's namespace and release, children of ``parent``; the release is returned."""
    pin = PINS["cert-manager"]
    ns = Namespace(pin.namespace, provider, parent, labels={"infratech.io/component": component})
    return release(pin, cert_manager_values(cfg), child_opts(parent, provider, depends_on=[ns.resource]), mirror=cfg.mirror)
