"""OVHcloud: Managed Kubernetes Service (MKS) with GPU node pools, a vRack private network and
S3 object storage, declared with ``pulumi_ovh``.

Facts this follows (see docs/providers/ovh.md): GPU flavours (l4, l40s, a100, h100) are sold in
GRA11; MKS GPU nodes come without a driver, so ``driver_preinstalled=False`` and the platform's GPU
operator installs it; pool names may not contain ``_``; a pool's flavour cannot change in place;
object-storage regions are upper-case (``GRA``).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Optional

import pulumi
import pulumi_ovh as ovh

from ..config import Pool, StackConfig
from ..handle import ClusterHandle, ObjectStoreHandle
from .common import pool_handle

S3_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:ListBucket",
    "s3:GetBucketLocation",
    "s3:ListBucketMultipartUploads",
    "s3:ListMultipartUploadParts",
    "s3:AbortMultipartUpload",
)


def s3_endpoint(storage_region: str) -> str:
    return f"https://s3.{storage_region.lower()}.io.cloud.ovh.net"


def bucket_policy(bucket_names: list[str]) -> str:
    """An S3 policy that lets the platform's user reach these buckets and nothing else."""
    resources = [arn for name in bucket_names for arn in (f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*")]
    return json.dumps(
        {"Statement": [{"Sid": "PlatformBuckets", "Effect": "Allow", "Action": list(S3_ACTIONS), "Resource": resources}]},
        sort_keys=True,
    )


class OvhCluster(pulumi.ComponentResource):
    """Private network, MKS cluster, node pools and object storage for one stack."""

    handle: ClusterHandle

    def __init__(self, name: str, cfg: StackConfig, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:providers:OvhCluster", name, None, opts)
        self._cfg = cfg
        self._name = name
        project = cfg.ovh.service_name
        child = pulumi.ResourceOptions(parent=self)

        network_id, subnet, gateway = self._network(project, child)
        depends = [gateway] if gateway is not None else [subnet]
        self.kube = ovh.cloudproject.Kube(
            f"{name}-mks",
            service_name=project,
            name=name,
            region=cfg.region,
            version=cfg.ovh.kube_version,
            plan=cfg.ovh.plan,
            update_policy=cfg.ovh.update_policy,
            private_network_id=network_id,
            nodes_subnet_id=subnet.id,
            private_network_configuration=ovh.cloudproject.KubePrivateNetworkConfigurationArgs(
                default_vrack_gateway=self._gateway_ip() if gateway is not None else "",
                private_network_routing_as_default=cfg.ovh.private_network_routing_as_default and gateway is not None,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        if cfg.ovh.api_allowed_cidrs:
            ovh.cloudproject.KubeIpRestrictions(
                f"{name}-api-allowlist",
                service_name=project,
                kube_id=self.kube.id,
                ips=list(cfg.ovh.api_allowed_cidrs),
                opts=child,
            )
        self.node_pools = [self._node_pool(project, pool) for pool in cfg.pools]
        object_store = self._object_storage(project, child)

        self.handle = ClusterHandle(
            provider="ovh",
            region=cfg.region,
            kubeconfig=pulumi.Output.secret(self.kube.kubeconfig),
            pools=tuple(pool_handle(cfg, p) for p in cfg.pools),
            object_store=object_store,
            driver_preinstalled=False,
            gpu_operator_preinstalled=False,
            country=cfg.region_facts.country,
        )
        self.register_outputs({"kubeconfig": self.handle.kubeconfig, "cluster_id": self.kube.id})

    # -- network ---------------------------------------------------------------------------------
    def _gateway_ip(self) -> str:
        return str(next(ipaddress.IPv4Network(self._cfg.network.cidr).hosts()))

    def _network(self, project, child):
        cfg, name = self._cfg, self._name
        net = ovh.cloudproject.NetworkPrivate(
            f"{name}-vrack",
            service_name=project,
            name=f"{name}-private",
            regions=[cfg.region],
            vlan_id=cfg.ovh.vlan_id,
            opts=child,
        )
        cidr = ipaddress.IPv4Network(cfg.network.cidr)
        first, last = _dhcp_range(cidr)
        subnet = ovh.cloudproject.NetworkPrivateSubnetV2(
            f"{name}-subnet",
            service_name=project,
            network_id=net.id,
            region=cfg.region,
            name=f"{name}-nodes",
            cidr=str(cidr),
            dhcp=True,
            enable_gateway_ip=cfg.network.gateway,
            gateway_ip=self._gateway_ip() if cfg.network.gateway else None,
            allocation_pools=[
                ovh.cloudproject.NetworkPrivateSubnetV2AllocationPoolArgs(start=first, end=last)
            ],
            opts=child,
        )
        # MKS and the gateway take the OpenStack id of the network in the region, not the vRack id.
        openstack_id = net.regions_attributes.apply(
            lambda attrs: next((a.openstackid for a in attrs or [] if a.region == cfg.region), None)
        )
        gateway = None
        if cfg.network.gateway:
            gateway = ovh.cloudproject.Gateway(
                f"{name}-gateway",
                service_name=project,
                name=f"{name}-gateway",
                model=cfg.ovh.gateway_model,
                region=cfg.region,
                network_id=openstack_id,
                subnet_id=subnet.id,
                opts=child,
            )
        return openstack_id, subnet, gateway

    # -- node pools ------------------------------------------------------------------------------
    def _node_pool(self, project, pool: Pool) -> ovh.cloudproject.KubeNodePool:
        handle = pool_handle(self._cfg, pool)
        return ovh.cloudproject.KubeNodePool(
            f"{self._name}-pool-{pool.name}",
            service_name=project,
            kube_id=self.kube.id,
            name=pool.name,
            flavor_name=pool.flavor,
            desired_nodes=pool.desired_nodes,
            min_nodes=pool.min_nodes,
            max_nodes=pool.max_nodes,
            autoscale=pool.autoscale,
            anti_affinity=pool.anti_affinity,
            monthly_billed=pool.monthly_billed,
            availability_zones=[pool.availability_zone] if pool.availability_zone else None,
            template=ovh.cloudproject.KubeNodePoolTemplateArgs(
                metadata=ovh.cloudproject.KubeNodePoolTemplateMetadataArgs(
                    labels=handle.labels, annotations={}, finalizers=[]
                ),
                spec=ovh.cloudproject.KubeNodePoolTemplateSpecArgs(
                    unschedulable=False, taints=[dict(t) for t in handle.taints]
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    # -- object storage --------------------------------------------------------------------------
    def _object_storage(self, project, child) -> Optional[ObjectStoreHandle]:
        cfg, name = self._cfg, self._name
        if not cfg.object_storage.buckets:
            return None
        region = cfg.object_storage_region.upper()
        buckets = {}
        for bucket in cfg.object_storage.buckets:
            res = ovh.CloudStorageObjectBucket(
                f"{name}-bucket-{bucket.name}",
                service_name=project,
                region=region,
                name=cfg.bucket_name(bucket),
                versioning=ovh.CloudStorageObjectBucketVersioningArgs(
                    status="ENABLED" if bucket.versioning else "DISABLED"
                ),
                encryption=ovh.CloudStorageObjectBucketEncryptionArgs(
                    algorithm="AES256" if bucket.encryption else "PLAINTEXT"
                ),
                tags={**cfg.labels, "infratech.io/bucket": bucket.name},
                opts=pulumi.ResourceOptions(parent=self, protect=bucket.protect),
            )
            buckets[bucket.name] = res.name
        user = ovh.cloudproject.User(
            f"{name}-s3-user",
            service_name=project,
            description=f"{name}: object storage for datasets and checkpoints",
            role_names=["objectstore_operator"],
            opts=child,
        )
        ovh.cloudproject.S3Policy(
            f"{name}-s3-policy",
            service_name=project,
            user_id=user.id,
            policy=bucket_policy([cfg.bucket_name(b) for b in cfg.object_storage.buckets]),
            opts=child,
        )
        cred = ovh.cloudproject.S3Credential(f"{name}-s3-credential", service_name=project, user_id=user.id, opts=child)
        return ObjectStoreHandle(
            endpoint=s3_endpoint(region),
            region=region,
            buckets=buckets,
            access_key_id=pulumi.Output.secret(cred.access_key_id),
            secret_access_key=pulumi.Output.secret(cred.secret_access_key),
        )


def _dhcp_range(cidr: ipaddress.IPv4Network) -> tuple[str, str]:
    """DHCP range: everything but the gateway (first host) and the last host."""
    first = cidr.network_address + 2
    last = cidr.broadcast_address - 2
    return str(first), str(last)
