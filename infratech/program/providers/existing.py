"""An existing cluster: built elsewhere (on premises, or by another team), used as it is.

Nothing is created here. The component turns what the stack says about the cluster (kubeconfig,
context, GPU pools, driver and toolkit already installed, an S3-compatible store) into the same
:class:`ClusterHandle` the managed providers give, so the platform layer installs on top of it in
the same way. The kubeconfig is a secret, by content (stack secret ``kubeconfig``) or by path (read
by the Kubernetes provider when it connects, so a plan needs no cluster and no file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pulumi

from ...config import Problem, StackConfig, StackConfigError
from ..handle import ClusterHandle, ObjectStoreHandle
from .common import pool_handle


class ExistingCluster(pulumi.ComponentResource):
    handle: ClusterHandle

    def __init__(self, name: str, cfg: StackConfig, offline: bool, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:providers:ExistingCluster", name, None, opts)
        existing = cfg.existing
        assert existing is not None, "validated: provider existing has its settings"
        if existing.kubeconfig_path is not None:
            path = Path(existing.kubeconfig_path).expanduser()
            if not offline and not path.is_file():
                raise StackConfigError(
                    pulumi.get_stack(),
                    [Problem(path="existing.kubeconfig_path", message="no such file on this machine", given=existing.kubeconfig_path)],
                )
            kubeconfig = pulumi.Output.secret(str(path))
        else:
            kubeconfig = pulumi.Output.secret(cfg.kubeconfig.get_secret_value())

        store = None
        if existing.object_store is not None:
            s = existing.object_store
            store = ObjectStoreHandle(
                endpoint=s.endpoint,
                region=s.region,
                buckets={purpose: pulumi.Output.from_input(bucket) for purpose, bucket in s.buckets.items()},
                access_key_id=pulumi.Output.secret(cfg.object_store_access_key_id.get_secret_value()),
                secret_access_key=pulumi.Output.secret(cfg.object_store_secret_access_key.get_secret_value()),
            )
        self.handle = ClusterHandle(
            provider="existing",
            region=cfg.region,
            kubeconfig=kubeconfig,
            kube_context=existing.context,
            pools=tuple(pool_handle(cfg, p) for p in cfg.pools),
            object_store=store,
            driver_preinstalled=existing.driver_preinstalled,
            toolkit_preinstalled=existing.toolkit_preinstalled,
            gpu_operator_preinstalled=existing.gpu_operator_preinstalled,
            distribution=existing.distribution,
            kube_version=existing.kube_version,
            country=existing.country,
        )
        self.register_outputs({"kubeconfig": kubeconfig})
