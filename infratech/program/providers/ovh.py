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

from ...config import Pool, StackConfig
from ...endpoints import s3_endpoint
from ..handle import ClusterHandle, ObjectStoreHandle, S3Key
from . import s3_scopes
from .common import api_access, pool_handle

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


GPU_POOL_TIMEOUT = "3h"


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
            plan=cfg.ovh_plan,
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
                ips=self._allow_list(gateway),
                opts=child,
            )
        self.node_pools = [self._node_pool(project, pool) for pool in cfg.pools]
        self._oidc(project, child)
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
            # MKS answers on its API before any node exists; the platform's releases need the
            # system pool. KubeNodePool's create returns once the pool is READY
            # (terraform-provider-ovh resource_cloud_project_kube_nodepool.go, waitFor...StateTarget).
            ready=tuple(res for pool, res in zip(cfg.pools, self.node_pools) if pool.role == "system"),
            api_access=api_access(cfg.ovh.api_allowed_cidrs, cfg.ovh.deployer_cidrs),
        )
        self.register_outputs({"kubeconfig": self.handle.kubeconfig, "cluster_id": self.kube.id})

    def _allow_list(self, gateway) -> list[pulumi.Input[str]]:
        """The API allow-list: the stack's networks, the deployer's, and the gateway's external
        addresses when node egress goes through it: nodes then reach the public API endpoint
        from the gateway's address, which the list would otherwise refuse."""
        cidrs: list = list(dict.fromkeys([*self._cfg.ovh.api_allowed_cidrs, *self._cfg.ovh.deployer_cidrs]))
        if gateway is None or not self._cfg.ovh.private_network_routing_as_default:
            return cidrs
        # a gateway has one external address (external_informations[0].ips[0].ip); one element of
        # its own, so the stack's own entries stay readable in a preview
        return [*cidrs, gateway.external_informations.apply(lambda infos: f"{infos[0].ips[0].ip}/32")]

    def _oidc(self, project, opts: pulumi.ResourceOptions) -> None:
        """The issuer the MKS API server trusts for people's logins (`ovh.oidc`, docs/access.md)."""
        o = self._cfg.ovh.oidc
        if o is None:
            return
        ovh.cloudproject.KubeOidc(
            f"{self._name}-oidc",
            service_name=project,
            kube_id=self.kube.id,
            issuer_url=o.issuer_url,
            client_id=o.client_id,
            oidc_username_claim=o.username_claim,
            oidc_username_prefix=o.username_prefix,
            oidc_groups_claims=list(o.groups_claims) or None,
            oidc_groups_prefix=o.groups_prefix,
            oidc_required_claims=list(o.required_claims) or None,
            opts=opts,
        )

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
        # MKS, the gateway and the v2 subnet all take the OpenStack id of the network in the
        # region, not the vRack id (`pn-…`): the v2 subnet API is
        # POST /cloud/project/{sn}/region/{region}/network/{networkId}/subnet (terraform-provider-ovh
        # resource_cloud_project_network_private_subnet_v2.go and its test, which passes
        # regions_attributes[0].openstackid).
        openstack_id = net.regions_attributes.apply(
            lambda attrs: next((a.openstackid for a in attrs or [] if a.region == cfg.region), None)
        )
        subnet = ovh.cloudproject.NetworkPrivateSubnetV2(
            f"{name}-subnet",
            service_name=project,
            network_id=openstack_id,
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
        # desired_nodes is the autoscaler's to move once the pool exists: sent again on every
        # `up`, it would reset the autoscaler's choice.
        ignore = ["desiredNodes"] if pool.autoscale else None
        # create and update wait until the pool is READY, by default for 1 h; OVHcloud says GPU
        # nodes may take more than an hour to be ready (ovh/docs PR #8587, MKS known limits).
        timeouts = pulumi.CustomTimeouts(create=GPU_POOL_TIMEOUT, update=GPU_POOL_TIMEOUT) if self._cfg.offer(pool).is_gpu else None
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
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore, custom_timeouts=timeouts),
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
        names = {b.name: cfg.bucket_name(b) for b in cfg.object_storage.buckets}
        platform = self._s3_identity(project, "platform", "object storage for datasets and checkpoints", bucket_policy(list(names.values())))
        teams = {
            team.name: self._s3_identity(project, f"team-{team.name}", f"team {team.name}: its own prefix", s3_scopes.team_policy(team.name, names))
            for team in cfg.teams
        }
        readonly = self._s3_identity(project, "readonly", "serving and dataset mounts: read only", s3_scopes.readonly_policy(names))
        promoter = self._s3_identity(project, "promoter", "the evaluation gate: writes promotions", s3_scopes.promoter_policy(names))
        return ObjectStoreHandle(
            endpoint=s3_endpoint("ovh", region),
            # what S3 clients sign with (SigV4 credential scope): OVHcloud's own S3 examples
            # (`aws configure`, rclone, boto3) use the lower-case region, as in the endpoint's host
            # name; the bucket API above takes it upper-case
            region=region.lower(),
            buckets=buckets,
            access_key_id=platform.access_key_id,
            secret_access_key=platform.secret_access_key,
            teams=teams,
            readonly=readonly,
            promoter=promoter,
        )

    def _s3_identity(self, project, role: str, purpose: str, policy) -> S3Key:
        """One OVHcloud user, its S3 policy and its credential: what one identity may do is what
        its policy document allows (providers/s3_scopes.py)."""
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        # the first identity keeps the names it had when it was the only one: no replacement on update
        suffix = "" if role == "platform" else f"-{role}"
        user = ovh.cloudproject.User(
            f"{name}-s3-user{suffix}",
            service_name=project,
            description=f"{name}: {purpose}",
            role_names=["objectstore_operator"],
            opts=child,
        )
        ovh.cloudproject.S3Policy(f"{name}-s3-policy{suffix}", service_name=project, user_id=user.id, policy=policy, opts=child)
        cred = ovh.cloudproject.S3Credential(f"{name}-s3-credential{suffix}", service_name=project, user_id=user.id, opts=child)
        return S3Key(pulumi.Output.secret(cred.access_key_id), pulumi.Output.secret(cred.secret_access_key))


def _dhcp_range(cidr: ipaddress.IPv4Network) -> tuple[str, str]:
    """DHCP range: everything but the gateway (first host) and the last host."""
    first = cidr.network_address + 2
    last = cidr.broadcast_address - 2
    return str(first), str(last)
