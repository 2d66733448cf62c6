"""Each provider's own settings: ``ovh:``, ``scaleway:``, ``existing:``."""

from __future__ import annotations

import re

from typing import Any, Literal, Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .. import catalog as _catalog
from .common import _DURATION, _K8S_PATCH_VERSION, _Model, _api_cidrs, _context_region, _country_code, _dns_label, _kube_version


class Oidc(_Model):
    """OpenID Connect for the Kubernetes API, so people log in with the company's identity provider."""

    issuer_url: str
    client_id: str
    username_claim: Optional[str] = None
    username_prefix: Optional[str] = None
    groups_claims: tuple[str, ...] = ()
    groups_prefix: Optional[str] = None
    required_claims: tuple[str, ...] = ()

    @field_validator("issuer_url")
    @classmethod
    def _https(cls, v: str) -> str:
        if not re.match(r"^https://[^/\s]+", v):
            raise ValueError("must be an https:// URL (the API server only trusts TLS issuers)")
        return v


class OvhSettings(_Model):
    service_name: Optional[str] = Field(
        default=None, description="Public Cloud project id; OVH_CLOUD_PROJECT_SERVICE when unset"
    )
    kube_version: str = "1.34"
    # None: the plan the region sells (catalog `mks_plans`): free in single-zone regions such as
    # GRA11, standard in the 3-AZ region EU-WEST-PAR
    plan: Optional[Literal["free", "standard"]] = None
    update_policy: Literal["ALWAYS_UPDATE", "MINIMAL_DOWNTIME", "NEVER_UPDATE"] = "MINIMAL_DOWNTIME"
    api_allowed_cidrs: tuple[str, ...] = ()
    deployer_cidrs: tuple[str, ...] = Field(
        default=(), description="where `pulumi up` runs from (its egress address): added to the API allow-list"
    )
    gateway_model: Literal["s", "m", "l", "xl", "2xl"] = "s"
    vlan_id: int = Field(default=0, ge=0, le=4000)
    private_network_routing_as_default: bool = True
    # the API server trusts this issuer (ovh.cloudproject.KubeOidc): people log in with the
    # company's identity provider, `infratech kubeconfig` writes the login (docs/access.md)
    oidc: Optional[Oidc] = None

    @field_validator("kube_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        return _kube_version(v, allow_patch=False)

    @field_validator("api_allowed_cidrs", "deployer_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _api_cidrs(v)

    @field_validator("plan")
    @classmethod
    def _plan(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        region = _context_region(info)
        if v is None or region is None or not region.mks_plans:
            return v
        if v not in region.mks_plans:
            kind = "a 3-AZ region" if region.zones else "a single-zone region"
            raise ValueError(f"MKS plan {v!r} is not sold in {region.name} ({kind}); allowed there: {', '.join(region.mks_plans)}")
        return v


class ScalewayAutoscaler(_Model):
    """Kapsule's cluster autoscaler. GPU nodes are expensive: scale down soon after they idle."""

    scale_down_disabled: bool = False
    scale_down_delay_after_add: str = "10m"
    scale_down_unneeded_time: str = "10m"
    scale_down_utilization_threshold: float = Field(default=0.5, gt=0, le=1)
    expander: Literal["random", "least_waste", "most_pods", "priority"] = "least_waste"
    ignore_daemonsets_utilization: bool = True
    balance_similar_node_groups: bool = True
    max_graceful_termination_sec: int = Field(default=600, ge=0, le=86400, strict=True)

    @field_validator("scale_down_delay_after_add", "scale_down_unneeded_time")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not _DURATION.match(v):
            raise ValueError("must be a duration such as 30s, 10m or 1h")
        return v


class AutoUpgrade(_Model):
    enabled: bool = True
    day: Literal["any", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] = "sunday"
    start_hour: int = Field(default=3, ge=0, le=23, strict=True)


class ScalewaySettings(_Model):
    project_id: Optional[str] = Field(default=None, description="Project of the cluster; SCW_DEFAULT_PROJECT_ID when unset")
    zone: Optional[str] = Field(default=None, description="Zone of pools without availability_zone and of the public gateway")
    kube_version: str = "1.34"
    cluster_type: Literal["kapsule", "kapsule-dedicated-4", "kapsule-dedicated-8", "kapsule-dedicated-16"] = "kapsule"
    cni: Literal["cilium", "calico", "kilo"] = "cilium"
    api_allowed_cidrs: tuple[str, ...] = ()
    deployer_cidrs: tuple[str, ...] = Field(
        default=(), description="where `pulumi up` runs from (its egress address): added to the API allow-list"
    )
    autoscaler: ScalewayAutoscaler = ScalewayAutoscaler()
    auto_upgrade: AutoUpgrade = AutoUpgrade()
    oidc: Optional[Oidc] = None
    gateway_type: Literal["VPC-GW-S", "VPC-GW-M", "VPC-GW-L", "VPC-GW-XL"] = "VPC-GW-S"
    root_volume_type: Literal["l_ssd", "sbs_5k", "sbs_15k"] = "sbs_15k"
    api_key_rotation_days: int = Field(
        default=90, ge=7, le=365, strict=True,
        description="the object-storage API key is replaced by the first `up` after this many days (docs/providers/scaleway.md)",
    )
    data_project: bool = Field(
        default=True,
        description="put the buckets in a project of their own, so that the platform's API key reaches only them",
    )
    bucket_admins: tuple[str, ...] = Field(
        default=(),
        description="SCW principals (`user_id:<id>`, `application_id:<id>`) the bucket policies keep in full control: the deployer",
    )

    @field_validator("project_id")
    @classmethod
    def _uuid(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", v):
            raise ValueError("must be a Scaleway project id (a lowercase UUID)")
        return v

    @field_validator("bucket_admins")
    @classmethod
    def _principals(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        bad = [p for p in v if not re.fullmatch(rf"(user_id|application_id):{uuid}", p)]
        if bad:
            raise ValueError(f"not a Scaleway principal (user_id:<uuid> or application_id:<uuid>): {', '.join(bad)}")
        return v

    @field_validator("zone")
    @classmethod
    def _zone(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        region = _context_region(info)
        if v is not None and region is not None and v not in region.zones:
            raise ValueError(f"not a zone of {region.name}; allowed: {', '.join(region.zones)}")
        return v

    @field_validator("kube_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        return _kube_version(v, allow_patch=True)

    @field_validator("api_allowed_cidrs", "deployer_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _api_cidrs(v)

    @model_validator(mode="after")
    def _upgrade_needs_minor(self) -> "ScalewaySettings":
        if not self.data_project and self.project_id is None:
            raise ValueError(
                "data_project: false puts the buckets in the cluster's project, whose id the key's policy must name: set project_id"
            )
        if self.auto_upgrade.enabled and _K8S_PATCH_VERSION.match(self.kube_version):
            raise ValueError(
                f"kube_version {self.kube_version!r} names a patch release, but auto_upgrade picks patches itself: "
                f"write {'.'.join(self.kube_version.split('.')[:2])!r} or set auto_upgrade.enabled: false"
            )
        return self


class ExistingObjectStore(_Model):
    """An S3-compatible store the existing cluster uses; its keys are the stack secrets
    ``object_store_access_key_id`` and ``object_store_secret_access_key``."""

    endpoint: str
    region: str
    buckets: dict[str, str] = Field(min_length=1)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d+)?/?", v):
            raise ValueError("must be an https:// URL of an S3-compatible endpoint (scheme, host and optional port)")
        return v.rstrip("/")

    @field_validator("buckets")
    @classmethod
    def _buckets(cls, v: dict[str, str]) -> dict[str, str]:
        for purpose, bucket in v.items():
            _dns_label(purpose, "bucket purpose", 30)
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
                raise ValueError(f"bucket {bucket!r} ({purpose}) is not an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
        return v


class ExistingSettings(_Model):
    """A cluster someone else built (on premises, or provisioned elsewhere)."""

    kubeconfig_path: Optional[str] = None
    context: Optional[str] = None
    country: str = Field(default="FR", description="ISO 3166 country where the cluster runs, for residency checks")
    distribution: Literal["generic", "rke2", "k3s"] = "generic"
    # rke2/k3s: which containerd (1.7 or 2) and so which config template the GPU operator's toolkit
    # writes; unset means a release with containerd 2 (every RKE2/k3s release from 1.33 on)
    kube_version: Optional[str] = None
    driver_preinstalled: bool = True
    toolkit_preinstalled: bool = False
    gpu_operator_preinstalled: bool = False
    object_store: Optional[ExistingObjectStore] = None
    # the cluster's block-storage CSI driver, for the platform's Retain storage classes (none if unset)
    block_storage_provisioner: Optional[str] = None
    block_storage_parameters: dict[str, str] = Field(default_factory=dict)
    # the issuer the cluster's API server already trusts (RKE2: kube-apiserver-arg oidc-*; nothing
    # is changed on the cluster): what `infratech kubeconfig` writes the login for (docs/access.md)
    oidc: Optional[Oidc] = None

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        return _country_code(v)

    @field_validator("kube_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Optional[str]:
        return None if v is None else _kube_version(v, allow_patch=True)

def _ovh_plan(provider: Any, region: Any, settings: Any) -> Optional[str]:
    """The MKS plan of an OVHcloud stack: the one it names, else the first its region sells."""
    if provider != "ovh":
        return None
    if isinstance(settings, OvhSettings) and settings.plan is not None:
        return settings.plan
    facts = _catalog.load().region("ovh", region) if isinstance(region, str) else None
    return (facts.mks_plans if facts is not None and facts.mks_plans else ("free",))[0]
