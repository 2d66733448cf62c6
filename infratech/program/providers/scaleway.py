"""Scaleway: Kapsule (managed Kubernetes) with GPU pools, a VPC private network behind a public
gateway, and S3 object storage reached by an IAM application, declared with ``pulumiverse_scaleway``.

Facts this follows (see docs/providers/scaleway.md):
- Kapsule clusters, VPCs and buckets are regional (``fr-par``); Instances, pools, placement groups and
  public gateways are zonal (``fr-par-2``). GPU node types are sold in some zones only (H100-SXM and
  B300 in fr-par-2), so every pool has a zone, its own or the stack's default.
- Scaleway installs the NVIDIA GPU operator on every Kapsule GPU pool (driver, toolkit, device
  plugin): the handle says so and the platform layer must not install a second operator.
- Kapsule requires a private network. Nodes without public IPs reach the Internet through the
  public gateway, which must push the default route; pools wait for it.
- With auto-upgrade on, Kapsule takes a minor version (``1.34``) and picks patches itself.
- IAM policies are scoped to projects, not buckets. The buckets therefore live in a project of
  their own (``data_project``), and each application's IAM policy names only that project. Inside
  it, a bucket policy per bucket (version 2023-04-17: what it does not allow is denied) gives each
  identity its scope: a team its prefix, serving read-only, the gate the promotions. The deployer
  stays in control only if ``scaleway.bucket_admins`` names it; the Organization's owner can
  always replace a bucket policy (scaleway.com docs, "Bucket policies overview").
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from typing import Optional

import pulumi
import pulumiverse_scaleway as scw
import pulumiverse_time as time

from ...config import Pool, StackConfig
from ...endpoints import s3_endpoint
from ..handle import ClusterHandle, ObjectStoreHandle, S3Key
from . import s3_scopes
from .common import api_access, pool_handle

# What the platform's key may do on the data project's buckets: read and write objects, see the
# buckets (HeadBucket), never change or delete a bucket or its policy.
OBJECT_STORAGE_PERMISSIONS = (
    "ObjectStorageBucketsRead",
    "ObjectStorageObjectsRead",
    "ObjectStorageObjectsWrite",
    "ObjectStorageObjectsDelete",
)

READ_ONLY_PERMISSIONS = ("ObjectStorageBucketsRead", "ObjectStorageObjectsRead")

KEY_GRACE_DAYS = 14


def _plus_grace(rotation_rfc3339: str) -> str:
    """When the key expires: its rotation time plus the grace period (RFC 3339, UTC)."""
    due = datetime.fromisoformat(rotation_rfc3339.replace("Z", "+00:00"))
    return (due + timedelta(days=KEY_GRACE_DAYS)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tags(labels: dict[str, str]) -> list[str]:
    """Scaleway tags are plain strings: labels become ``key=value``."""
    return [f"{k}={v}" for k, v in sorted(labels.items())]


class ScalewayCluster(pulumi.ComponentResource):
    """VPC, private network and gateway, Kapsule cluster, pools and object storage for one stack."""

    handle: ClusterHandle

    def __init__(self, name: str, cfg: StackConfig, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:providers:ScalewayCluster", name, None, opts)
        self._cfg, self._name = cfg, name
        settings = cfg.scaleway
        child = pulumi.ResourceOptions(parent=self)
        tags = _tags({**cfg.labels, "infratech.io/stack": name})

        network, gateway_link = self._network(tags, child)
        self.cluster = scw.kubernetes.Cluster(
            f"{name}-kapsule",
            name=name,
            project_id=settings.project_id,
            region=cfg.region,
            type=settings.cluster_type,
            version=settings.kube_version,
            cni=settings.cni,
            private_network_id=network.id,
            # keep volumes and load balancers of workloads when the cluster goes: they may hold data
            delete_additional_resources=False,
            auto_upgrade=scw.kubernetes.ClusterAutoUpgradeArgs(
                enable=settings.auto_upgrade.enabled,
                maintenance_window_day=settings.auto_upgrade.day,
                maintenance_window_start_hour=settings.auto_upgrade.start_hour,
            ),
            autoscaler_config=self._autoscaler(),
            open_id_connect_config=self._oidc(),
            tags=tags,
            opts=child,
        )
        if settings.api_allowed_cidrs:
            scw.kubernetes.Acl(
                f"{name}-api-allowlist",
                cluster_id=self.cluster.id,
                region=cfg.region,
                acl_rules=[
                    *(scw.kubernetes.AclAclRuleArgs(ip=cidr, description="infratech api_allowed_cidrs")
                      for cidr in settings.api_allowed_cidrs),
                    *(scw.kubernetes.AclAclRuleArgs(ip=cidr, description="infratech deployer_cidrs")
                      for cidr in settings.deployer_cidrs if cidr not in settings.api_allowed_cidrs),
                ],
                opts=child,
            )
        self.pools = [self._pool(pool, gateway_link, tags) for pool in cfg.pools]
        object_store = self._object_storage(tags)

        kubeconfig = self.cluster.kubeconfigs.apply(lambda kcs: kcs[0].config_file if kcs else None)
        self.handle = ClusterHandle(
            provider="scaleway",
            region=cfg.region,
            kubeconfig=pulumi.Output.secret(kubeconfig),
            pools=tuple(pool_handle(cfg, p) for p in cfg.pools),
            object_store=object_store,
            driver_preinstalled=True,
            gpu_operator_preinstalled=any(cfg.offer(p).is_gpu for p in cfg.pools),
            toolkit_preinstalled=True,
            country=cfg.region_facts.country,
            # a new Kapsule cluster's API is not reachable until a pool exists (k8s_cluster docs,
            # "With the Kubernetes provider"); pools wait until ready (wait_for_pool_ready)
            ready=tuple(res for pool, res in zip(cfg.pools, self.pools) if pool.role == "system"),
            api_access=api_access(settings.api_allowed_cidrs, settings.deployer_cidrs),
        )
        self.register_outputs({"kubeconfig": self.handle.kubeconfig, "cluster_id": self.cluster.id})

    # -- network ---------------------------------------------------------------------------------
    def _network(self, tags: list[str], child: pulumi.ResourceOptions):
        cfg, name = self._cfg, self._name
        vpc = scw.network.Vpc(
            f"{name}-vpc", name=name, region=cfg.region, project_id=cfg.scaleway.project_id, tags=tags, opts=child
        )
        network = scw.network.PrivateNetwork(
            f"{name}-private",
            name=f"{name}-private",
            vpc_id=vpc.id,
            region=cfg.region,
            project_id=cfg.scaleway.project_id,
            ipv4_subnet=scw.network.PrivateNetworkIpv4SubnetArgs(subnet=str(ipaddress.IPv4Network(cfg.network.cidr))),
            tags=tags,
            opts=child,
        )
        if not cfg.network.gateway:
            return network, None
        zone = cfg.scaleway.zone or cfg.region_facts.zones[0]
        gateway = scw.network.PublicGateway(
            f"{name}-gateway",
            name=f"{name}-gateway",
            type=cfg.scaleway.gateway_type,
            zone=zone,
            project_id=cfg.scaleway.project_id,
            bastion_enabled=False,
            tags=tags,
            opts=child,
        )
        link = scw.network.GatewayNetwork(
            f"{name}-gateway-link",
            gateway_id=gateway.id,
            private_network_id=network.id,
            zone=zone,
            enable_masquerade=True,
            ipam_configs=[scw.network.GatewayNetworkIpamConfigArgs(push_default_route=True)],
            opts=child,
        )
        return network, link

    # -- cluster settings ------------------------------------------------------------------------
    def _autoscaler(self) -> scw.kubernetes.ClusterAutoscalerConfigArgs:
        a = self._cfg.scaleway.autoscaler
        return scw.kubernetes.ClusterAutoscalerConfigArgs(
            disable_scale_down=a.scale_down_disabled,
            scale_down_delay_after_add=a.scale_down_delay_after_add,
            scale_down_unneeded_time=a.scale_down_unneeded_time,
            scale_down_utilization_threshold=a.scale_down_utilization_threshold,
            expander=a.expander,
            ignore_daemonsets_utilization=a.ignore_daemonsets_utilization,
            balance_similar_node_groups=a.balance_similar_node_groups,
            max_graceful_termination_sec=a.max_graceful_termination_sec,
        )

    def _oidc(self) -> Optional[scw.kubernetes.ClusterOpenIdConnectConfigArgs]:
        o = self._cfg.scaleway.oidc
        if o is None:
            return None
        return scw.kubernetes.ClusterOpenIdConnectConfigArgs(
            issuer_url=o.issuer_url,
            client_id=o.client_id,
            username_claim=o.username_claim,
            username_prefix=o.username_prefix,
            groups_claims=list(o.groups_claims) or None,
            groups_prefix=o.groups_prefix,
            required_claims=list(o.required_claims) or None,
        )

    # -- pools -----------------------------------------------------------------------------------
    def _pool(self, pool: Pool, gateway_link, tags: list[str]) -> scw.kubernetes.Pool:
        cfg, name = self._cfg, self._name
        handle = pool_handle(cfg, pool)
        zone = cfg.zone(pool)
        placement_group_id = None
        if pool.placement_group:
            group = scw.instance.PlacementGroup(
                f"{name}-pool-{pool.name}-placement",
                name=f"{name}-{pool.name}",
                zone=zone,
                project_id=cfg.scaleway.project_id,
                policy_type="low_latency",  # nodes of one training job close together
                policy_mode="optional",  # a full rack must not stop the pool from scaling
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            placement_group_id = group.id
        depends = [gateway_link] if gateway_link is not None else []
        return scw.kubernetes.Pool(
            f"{name}-pool-{pool.name}",
            cluster_id=self.cluster.id,
            name=pool.name,
            node_type=pool.flavor,
            region=cfg.region,
            zone=zone,
            size=pool.desired_nodes,  # with autoscaling, read at creation only (scaleway_k8s_pool docs)
            min_size=pool.min_nodes,
            max_size=pool.max_nodes,
            autoscaling=pool.autoscale,
            autohealing=True,
            container_runtime="containerd",
            labels=handle.labels,
            taints=[scw.kubernetes.PoolTaintArgs(**t) for t in handle.taints],
            startup_taints=[scw.kubernetes.PoolStartupTaintArgs(**t.model_dump()) for t in pool.startup_taints] or None,
            root_volume_size_in_gb=pool.root_volume_gb,
            root_volume_type=cfg.scaleway.root_volume_type,
            # the gateway carries egress; nodes need no address on the Internet
            public_ip_disabled=gateway_link is not None,
            placement_group_id=placement_group_id,
            wait_for_pool_ready=True,
            upgrade_policy=scw.kubernetes.PoolUpgradePolicyArgs(max_surge=0, max_unavailable=1),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )

    # -- object storage --------------------------------------------------------------------------
    def _object_storage(self, tags: list[str]) -> Optional[ObjectStoreHandle]:
        cfg, name = self._cfg, self._name
        if not cfg.object_storage.buckets:
            return None
        region = cfg.object_storage_region
        child = pulumi.ResourceOptions(parent=self)
        if cfg.scaleway.data_project:
            project = scw.account.Project(
                f"{name}-data-project",
                name=f"{name}-data",
                description=f"{name}: datasets and checkpoints; the platform's API key reaches only this project",
                opts=child,
            )
            project_id = project.id
        else:
            project_id = cfg.scaleway.project_id
        buckets = {}
        for bucket in cfg.object_storage.buckets:
            rules = [
                scw.object.BucketLifecycleRuleArgs(
                    id="abort-incomplete-uploads",
                    enabled=True,
                    abort_incomplete_multipart_upload_days=bucket.abort_incomplete_upload_days,
                )
            ]
            if bucket.noncurrent_expiration_days is not None:
                rules.append(
                    scw.object.BucketLifecycleRuleArgs(
                        id="expire-old-versions",
                        enabled=True,
                        noncurrent_version_expiration=scw.object.BucketLifecycleRuleNoncurrentVersionExpirationArgs(
                            noncurrent_days=bucket.noncurrent_expiration_days
                        ),
                    )
                )
            res = scw.object.Bucket(
                f"{name}-bucket-{bucket.name}",
                name=cfg.bucket_name(bucket),
                region=region,
                project_id=project_id,
                versioning=scw.object.BucketVersioningArgs(enabled=bucket.versioning),
                lifecycle_rules=rules,
                force_destroy=False,
                tags={**cfg.labels, "infratech.io/bucket": bucket.name},
                opts=pulumi.ResourceOptions(parent=self, protect=bucket.protect),
            )
            if bucket.encryption:
                scw.object.BucketServerSideEncryptionConfiguration(
                    f"{name}-bucket-{bucket.name}-encryption",
                    bucket=res.name,
                    region=region,
                    project_id=project_id,
                    rules=[
                        scw.object.BucketServerSideEncryptionConfigurationRuleArgs(
                            apply_server_side_encryption_by_default=scw.object.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                                sse_algorithm="AES256"
                            )
                        )
                    ],
                    opts=child,
                )
            buckets[bucket.name] = res.name
        # the key expires: a time_rotating resource comes due every api_key_rotation_days, and the
        # first `up` after that replaces it (new key first, then the old one goes); the key itself
        # lives KEY_GRACE_DAYS longer, so a late `up` does not cut the workloads off at once
        rotation = time.Rotating(f"{name}-s3-key-rotation", rotation_days=self._cfg.scaleway.api_key_rotation_days, opts=child)
        roles = {"platform": OBJECT_STORAGE_PERMISSIONS, "readonly": READ_ONLY_PERMISSIONS, "promoter": OBJECT_STORAGE_PERMISSIONS}
        roles.update({f"team:{t.name}": OBJECT_STORAGE_PERMISSIONS for t in cfg.teams})
        apps, keys = {}, {}
        for role, permissions in roles.items():
            apps[role], keys[role] = self._s3_identity(role, permissions, project_id, tags, rotation)
        # IAM scopes a key to the data project; what each key may do inside it, bucket by bucket
        # and prefix by prefix, is the bucket policy's (providers/s3_scopes.py)
        ids = pulumi.Output.all(**{role: app.id for role, app in apps.items()})
        for bucket in cfg.object_storage.buckets:
            scw.object.BucketPolicy(
                f"{name}-bucket-{bucket.name}-policy",
                bucket=buckets[bucket.name],
                region=region,
                project_id=project_id,
                policy=ids.apply(
                    lambda i, p=bucket.name, b=cfg.bucket_name(bucket): s3_scopes.bucket_policy_document(p, b, i, cfg.scaleway.bucket_admins)
                ),
                opts=child,
            )
        platform = keys.pop("platform")
        return ObjectStoreHandle(
            endpoint=s3_endpoint("scaleway", region),
            region=region,
            buckets=buckets,
            access_key_id=platform.access_key_id,
            secret_access_key=platform.secret_access_key,
            teams={role.removeprefix("team:"): key for role, key in keys.items() if role.startswith("team:")},
            readonly=keys["readonly"],
            promoter=keys["promoter"],
        )

    def _s3_identity(self, role: str, permissions, project_id, tags: list[str], rotation) -> tuple:
        """An IAM application, its policy on the data project and its expiring API key."""
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        # the platform's identity keeps the names it had when it was the only one
        suffix = "" if role == "platform" else "-" + role.replace("team:", "team-")
        app = scw.iam.Application(
            f"{name}-s3-app{suffix}",
            name=f"{name}-object-storage{suffix}",
            description=f"{name}: object storage as {role}",
            tags=tags,
            opts=child,
        )
        scw.iam.Policy(
            f"{name}-s3-policy{suffix}",
            name=f"{name}-object-storage{suffix}",
            description="objects of the stack's buckets, nothing else; the bucket policies narrow it",
            application_id=app.id,
            rules=[
                scw.iam.PolicyRuleArgs(
                    project_ids=[project_id] if project_id is not None else None,
                    permission_set_names=list(permissions),
                )
            ],
            opts=child,
        )
        key = scw.iam.ApiKey(
            f"{name}-s3-key{suffix}",
            application_id=app.id,
            default_project_id=project_id,
            description=f"{name}: S3 access as {role}",
            expires_at=rotation.rotation_rfc3339.apply(_plus_grace),
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["secret_key"], replace_on_changes=["expiresAt"]),
        )
        return app, S3Key(pulumi.Output.secret(key.access_key), pulumi.Output.secret(key.secret_key))
