"""What every platform component shares: options for children, namespaces with Pod Security."""

from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

MANAGED_BY = {"app.kubernetes.io/managed-by": "infratech"}


def child_opts(parent: pulumi.Resource, provider, depends_on: Optional[Sequence[pulumi.Resource]] = None) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on or []))


def meta(name: str, namespace: Optional[str] = None, labels: Optional[dict[str, str]] = None, **extra) -> k8s.meta.v1.ObjectMetaArgs:
    return k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels={**MANAGED_BY, **(labels or {})}, **extra)


class Namespace:
    """A namespace whose Pod Security level is enforced (and audited and warned at the same level)."""

    def __init__(
        self,
        name: str,
        provider,
        parent: pulumi.Resource,
        pod_security: str = "restricted",
        labels: Optional[dict[str, str]] = None,
    ):
        self.name = name
        psa = {f"pod-security.kubernetes.io/{mode}": pod_security for mode in ("enforce", "audit", "warn")}
        self.resource = k8s.core.v1.Namespace(
            f"ns-{name}",
            metadata=meta(name, labels={**psa, **(labels or {})}),
            opts=pulumi.ResourceOptions(parent=parent, provider=provider),
        )
