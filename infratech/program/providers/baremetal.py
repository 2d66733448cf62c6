"""Bare metal: servers you own or rent (OVHcloud Bare Metal, Scaleway Elastic Metal, on premises),
listed per pool in the stack file and made into an RKE2 cluster by the node roles.

Nothing is created in any cloud. The component turns the stack's hosts into the same
:class:`ClusterHandle` as the other providers, with the inventory the bootstrap phase reads: every
host with its address, jump host, pool, RKE2 role (the system pool's hosts are the servers), and the
join token generated once as a secret.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_random as random

from ...config import StackConfig
from ..handle import ClusterHandle
from .common import pool_handle
from .selfbuilt import RKE2_SUPERVISOR_PORT, existing_store_handle, kubeconfig_from_config


class BaremetalCluster(pulumi.ComponentResource):
    handle: ClusterHandle

    def __init__(self, name: str, cfg: StackConfig, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:providers:BaremetalCluster", name, None, opts)
        settings = cfg.baremetal
        assert settings is not None, "validated: provider baremetal has its settings"
        self.token = random.RandomPassword(f"{name}-rke2-token", length=48, special=False,
                                           opts=pulumi.ResourceOptions(parent=self))
        hosts = []
        for pool in cfg.pools:
            for index, host in enumerate(pool.hosts):
                entry = {
                    "name": host.name or f"{pool.name}-{index + 1}",
                    "address": host.address,
                    "pool": pool.name,
                    "rke2_role": "server" if pool.role == "system" else "agent",
                    "user": settings.ssh_user,
                }
                if host.jump_host:
                    entry["jump_host"] = host.jump_host
                hosts.append(entry)
        first_server = next(h["address"] for h in hosts if h["rke2_role"] == "server")
        self.handle = ClusterHandle(
            provider="baremetal",
            region=cfg.region,
            kubeconfig=kubeconfig_from_config(cfg),
            pools=tuple(pool_handle(cfg, p) for p in cfg.pools),
            object_store=existing_store_handle(cfg, settings.object_store),
            driver_preinstalled=True,  # the node roles install the driver and the toolkit
            toolkit_preinstalled=True,
            gpu_operator_preinstalled=False,
            distribution="rke2",
            country=settings.country,
            inventory={
                "server_url": f"https://{first_server}:{RKE2_SUPERVISOR_PORT}",
                "api_endpoint": settings.api_endpoint or first_server,
                "hosts": hosts,
            },
            join_token=pulumi.Output.secret(self.token.result),
        )
        self.register_outputs({})
