"""What the self-built providers (Outscale VMs, bare metal) share: host names, the object store
they are given, and the kubeconfig the bootstrap phase writes into the stack's config.

The platform of a self-built cluster installs on a kubeconfig that is a known value: the stack
secret ``kubeconfig``, written by the bootstrap phase (``infratech up --phase bootstrap``) once the
node roles have made the cluster. A kubeconfig computed by resources of the same run would make
pulumi-kubernetes replace every platform object on each change (pulumi/pulumi-kubernetes#4019,
#1148). Until the bootstrap has run, the handle has no kubeconfig and no platform is declared.
"""

from __future__ import annotations

from typing import Optional

import pulumi

from ...config import Pool, StackConfig
from ..handle import ObjectStoreHandle

RKE2_SUPERVISOR_PORT = 9345


def host_name(stack: str, pool: Pool, index: int) -> str:
    """The planned name of a pool's ``index``-th machine (0-based): ``<stack>-<pool>-<n>``."""
    return f"{stack}-{pool.name}-{index + 1}"


def kubeconfig_from_config(cfg: StackConfig) -> Optional[pulumi.Output[str]]:
    """The kubeconfig the bootstrap phase wrote (a secret), or None before the bootstrap."""
    if cfg.kubeconfig is None:
        return None
    return pulumi.Output.secret(cfg.kubeconfig.get_secret_value())


def _credentials(cfg: StackConfig) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    return (pulumi.Output.secret(cfg.object_store_access_key_id.get_secret_value()),
            pulumi.Output.secret(cfg.object_store_secret_access_key.get_secret_value()))


def object_store_handle(cfg: StackConfig, endpoint: str, region: str) -> Optional[ObjectStoreHandle]:
    """Buckets that exist before the stack (created once, versioned and encrypted, as the provider
    docs say), named ``<stack name>-<bucket>``; their keys are the stack's object-store secrets."""
    if not cfg.object_storage.buckets:
        return None
    key_id, secret = _credentials(cfg)
    return ObjectStoreHandle(
        endpoint=endpoint,
        region=region,
        buckets={b.name: pulumi.Output.from_input(cfg.bucket_name(b)) for b in cfg.object_storage.buckets},
        access_key_id=key_id,
        secret_access_key=secret,
    )


def existing_store_handle(cfg: StackConfig, store) -> Optional[ObjectStoreHandle]:
    """An S3-compatible store named in the stack (``baremetal.object_store``), as for an existing cluster."""
    if store is None:
        return None
    key_id, secret = _credentials(cfg)
    return ObjectStoreHandle(
        endpoint=store.endpoint,
        region=store.region,
        buckets={purpose: pulumi.Output.from_input(bucket) for purpose, bucket in store.buckets.items()},
        access_key_id=key_id,
        secret_access_key=secret,
    )
