"""The stack configuration models: one frozen pydantic model per concern, validated against the
catalog (flavours per region, regions per provider). Read by :mod:`infratech.config.load`."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    SecretStr,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .. import catalog as _catalog
from ..images.spec import VERSION as IMAGE_VERSION

NAMESPACE = "infratech"
PROVIDERS = ("ovh", "scaleway", "existing")  # providers whose Cluster component exists
CATALOG_PROVIDERS = ("ovh", "scaleway")  # providers whose regions and flavours come from the catalog
PROVIDER_TITLES = {"ovh": "OVHcloud", "scaleway": "Scaleway", "outscale": "3DS Outscale", "existing": "an existing cluster"}
# stack keys that hold a credential: accepted only as Pulumi secrets (`pulumi config set --secret`)
SECRET_KEYS = ("kubeconfig", "object_store_access_key_id", "object_store_secret_access_key")
RESERVED_LABEL_PREFIX = "infratech.io/"
GPU_TAINT_KEY = "nvidia.com/gpu"

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_K8S_VERSION = re.compile(r"^1\.(\d+)$")
_K8S_PATCH_VERSION = re.compile(r"^1\.(\d+)\.(\d+)$")
_GPU_MODEL_ID = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DURATION = re.compile(r"^\d+(s|m|h)$")
_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _context_region(info: ValidationInfo) -> Optional["_catalog.Region"]:
    ctx = info.context or {}
    if ctx.get("provider") not in CATALOG_PROVIDERS or not ctx.get("region"):
        return None
    return _catalog.load().region(ctx["provider"], ctx["region"])


def _provider(info: ValidationInfo) -> Optional[str]:
    return (info.context or {}).get("provider")


def _only_for(key: str, providers: tuple[str, ...], info: ValidationInfo) -> None:
    """Reject a key the stack's provider does not understand (a typo'd intent is never ignored)."""
    provider = _provider(info)
    if provider in PROVIDERS and provider not in providers:
        names = " or ".join(PROVIDER_TITLES[p] for p in providers)
        raise ValueError(f"{key} applies only to {names}, not to {PROVIDER_TITLES[provider]}; remove it")


def _kube_version(v: Any, allow_patch: bool) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        raise ValueError(f"write the version in quotes, e.g. \"1.31\": YAML reads an unquoted {v} as a number")
    if not isinstance(v, str):
        raise ValueError("must be a string such as \"1.34\"")
    m = _K8S_VERSION.match(v) or (_K8S_PATCH_VERSION.match(v) if allow_patch else None)
    if not m or int(m.group(1)) < 30:
        form = "version '1.N' or '1.N.P'" if allow_patch else "minor version '1.N'"
        raise ValueError(f"must be a Kubernetes {form} with N >= 30 (admission policies need 1.30)")
    return v


def _api_cidrs(v: tuple[str, ...]) -> tuple[str, ...]:
    for cidr in v:
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            raise ValueError(f"{cidr!r} is not a CIDR block ({exc})") from None
        if net.prefixlen < 8:
            raise ValueError(f"{cidr!r} opens the Kubernetes API to a large part of the Internet (wider than /8); list the networks that need it")
    return v


def _ovh_plan(provider: Any, region: Any, settings: Any) -> Optional[str]:
    """The MKS plan of an OVHcloud stack: the one it names, else the first its region sells."""
    if provider != "ovh":
        return None
    if isinstance(settings, OvhSettings) and settings.plan is not None:
        return settings.plan
    facts = _catalog.load().region("ovh", region) if isinstance(region, str) else None
    return (facts.mks_plans if facts is not None and facts.mks_plans else ("free",))[0]


def _dns_label(value: str, what: str, max_len: int) -> str:
    if not _DNS_LABEL.match(value) or len(value) > max_len:
        raise ValueError(
            f"{what} must be lowercase letters, digits and '-', start with a letter, "
            f"end with a letter or digit, at most {max_len} characters"
        )
    return value


def _check_label_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if (prefix and (len(prefix) > 253 or not _LABEL_PREFIX.match(prefix))) or not (
        _LABEL_NAME.match(name) and len(name) <= 63
    ):
        raise ValueError(f"label key {key!r} is not a valid Kubernetes label key ([prefix/]name, name at most 63 characters)")


def _check_label_value(key: str, value: str) -> None:
    if value and not (_LABEL_NAME.match(value) and len(value) <= 63):
        raise ValueError(f"label {key!r} has value {value!r}, which is not a valid Kubernetes label value (at most 63 characters: letters, digits, '-', '_', '.')")


def _repeated(names) -> list[str]:
    names = list(names)
    return sorted({n for n in names if names.count(n) > 1})


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if key.startswith(RESERVED_LABEL_PREFIX):
            raise ValueError(f"label {key!r} uses the reserved prefix {RESERVED_LABEL_PREFIX!r}, which the platform sets itself")
        _check_label_key(key)
        _check_label_value(key, value)
    return labels


# Kubernetes-style labels; the infratech.io/ prefix is the platform's own
Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Taint(_Model):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        _check_label_key(v)
        return v


MIG_CAPABLE = ("a100", "a30", "h100", "h200", "h800", "gh200", "b200", "b300", "gb200")


def _pool_gpu_model(info: ValidationInfo) -> Optional[str]:
    """The GPU model id of the pool being validated, from its flavour (catalog providers)."""
    provider, flavor = _provider(info), info.data.get("flavor")
    offer = _catalog.load().offer(provider, flavor) if provider in CATALOG_PROVIDERS and flavor else None
    return offer.gpu_model_id if offer is not None else None


class Pool(_Model):
    """A node pool. GPU pools get the GPU label and taint from the platform, not from the user.

    Field order matters: validators read the fields declared before them (``role`` and
    ``availability_zone`` come before ``flavor``, which is checked against both).
    """

    name: str
    role: Literal["system", "training", "inference"]
    availability_zone: Optional[str] = None
    flavor: Optional[str] = Field(default=None, validate_default=True)
    # existing clusters: what the nodes have, since no catalog flavour describes them
    gpu_model: Optional[str] = Field(default=None, validate_default=True)
    gpus_per_node: Optional[int] = Field(default=None, ge=1, le=16, strict=True, validate_default=True)
    min_nodes: int = Field(default=0, ge=0, le=1000, strict=True)
    max_nodes: int = Field(default=1, ge=1, le=1000, strict=True)
    desired_nodes: int = Field(default=1, ge=0, le=1000, strict=True)
    autoscale: bool = False
    labels: Labels = Field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    # OVHcloud only
    anti_affinity: bool = False
    monthly_billed: bool = False
    # Scaleway only
    root_volume_gb: Optional[int] = Field(default=None, ge=20, le=10000, strict=True)
    startup_taints: tuple[Taint, ...] = ()
    placement_group: bool = False
    # GPU sharing through the platform's GPU operator: inference pools only
    gpu_sharing: Optional[Literal["time-slicing", "mig"]] = None
    time_slicing_replicas: Optional[int] = Field(default=None, ge=2, le=48, strict=True, validate_default=True)
    mig_profile: Optional[str] = Field(default=None, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _nodes_shorthand(cls, data: Any) -> Any:
        """``nodes: N`` is a fixed-size pool: min, desired and max all N."""
        if not isinstance(data, dict) or "nodes" not in data:
            return data
        n = data["nodes"]
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 1000:
            raise ValueError(f"nodes must be a whole number from 0 to 1000 (given: {n!r})")
        clash = [k for k in ("min_nodes", "desired_nodes", "max_nodes") if k in data]
        if clash:
            raise ValueError(f"nodes sets min_nodes, desired_nodes and max_nodes at once; remove {', '.join(clash)} or nodes")
        rest = {k: v for k, v in data.items() if k != "nodes"}
        return {**rest, "min_nodes": n, "desired_nodes": n, "max_nodes": max(n, 1)}

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _dns_label(v, "pool name", 20)

    @field_validator("availability_zone")
    @classmethod
    def _zone(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        region = _context_region(info)
        if v is None or region is None:
            return v
        if not region.zones:
            raise ValueError(f"{region.name} is a single-zone region; leave availability_zone out")
        if v not in region.zones:
            raise ValueError(f"not a zone of {region.name}; allowed: {', '.join(region.zones)}")
        return v

    @field_validator("flavor")
    @classmethod
    def _flavor(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        provider = _provider(info)
        if provider == "existing":
            return v  # free text: what the nodes are, for people reading the plan
        if v is None:
            raise ValueError("is required: the instance type of the pool's nodes")
        region = _context_region(info)
        if region is None:
            return v  # the provider or region is reported on its own
        cat, title = _catalog.load(), PROVIDER_TITLES[region.provider]
        offer = cat.offer(region.provider, v)
        zone = info.data.get("availability_zone") or (info.context or {}).get("zone")
        if region.provider == "scaleway":
            if zone is None:
                return v  # the default zone is reported on its own
            sold = ", ".join(cat.flavors_in(region.provider, zone))
            if offer is None:
                raise ValueError(f"not an Instance type {title} sells in {zone}; allowed: {sold}")
            if not offer.sold_in(zone):
                where = [loc for loc in offer.regions or () if loc in region.zones]
                hint = f"set availability_zone (or scaleway.zone) to {' or '.join(where)}" if where else f"it is not sold in {region.name} at all"
                raise ValueError(f"{title} sells {v} only in {', '.join(offer.regions or ())}, not in {zone}; {hint}")
        else:
            sold = ", ".join(cat.flavors_in(region.provider, region.name))
            if offer is None:
                raise ValueError(f"not a flavour {title} sells in {region.name}; allowed: {sold}")
            if not offer.sold_in_region(region):
                raise ValueError(
                    f"{title} sells {v} only in {', '.join(offer.regions or ())}, not in {region.name}; allowed there: {sold}"
                )
        role = info.data.get("role")
        if role == "system" and offer.is_gpu:
            raise ValueError(f"'system' pools must use a CPU flavour, {v!r} has GPUs")
        if role in ("training", "inference") and not offer.is_gpu:
            raise ValueError(f"{role!r} pools need a GPU flavour, {v!r} has none")
        return v

    @field_validator("gpu_model", "gpus_per_node")
    @classmethod
    def _existing_gpus(cls, v: Any, info: ValidationInfo) -> Any:
        """What an existing cluster's GPU pools must say about their nodes, since no catalog does."""
        name = info.field_name
        if v is not None:
            _only_for(name, ("existing",), info)
        if _provider(info) != "existing":
            return v
        role = info.data.get("role")
        if role == "system" and v is not None:
            raise ValueError(f"'system' pools have no GPUs; remove {name}")
        if role not in ("training", "inference"):
            return v
        known = ", ".join(_catalog.load().gpu_models())
        what = f"the GPU model id, e.g. one of {known}" if name == "gpu_model" else "how many GPUs each node has"
        if v is None:
            raise ValueError(f"is required for {role!r} pools of an existing cluster: {what}")
        if name == "gpu_model" and (not _GPU_MODEL_ID.match(v) or len(v) > 63):
            raise ValueError(f"must be a lowercase GPU model id such as h100-80gb (letters, digits, '-'); catalog ids: {known}")
        return v

    @field_validator("anti_affinity", "monthly_billed")
    @classmethod
    def _ovh_only(cls, v: bool, info: ValidationInfo) -> bool:
        _only_for(info.field_name, ("ovh",), info)
        return v

    @field_validator("root_volume_gb", "startup_taints")
    @classmethod
    def _scaleway_only(cls, v: Any, info: ValidationInfo) -> Any:
        _only_for(info.field_name, ("scaleway",), info)
        return v

    @field_validator("placement_group")
    @classmethod
    def _placement_group(cls, v: bool, info: ValidationInfo) -> bool:
        _only_for("placement_group", ("scaleway",), info)
        if v and info.data.get("role") != "training":
            raise ValueError("placement groups keep the nodes of a multi-node training job close together; only 'training' pools take one")
        return v

    @field_validator("gpu_sharing")
    @classmethod
    def _sharing(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        if v is None:
            return v
        role = info.data.get("role")
        if role != "inference":
            raise ValueError(
                f"GPU sharing gives no memory (time-slicing) or no full GPU (MIG) to a job; only 'inference' pools take it, not {role!r}"
            )
        if (info.context or {}).get("gpu_operator_elsewhere"):
            raise ValueError(
                f"{PROVIDER_TITLES.get(_provider(info) or '', 'the provider')} runs the GPU operator itself; "
                "configure sharing there, the platform installs no operator to do it"
            )
        model = info.data.get("gpu_model") or _pool_gpu_model(info)
        if v == "mig" and model is not None and not any(model.startswith(p) for p in MIG_CAPABLE):
            raise ValueError(f"MIG needs an A100, H100, H200, B200 or B300 class GPU; {model} has no MIG")
        return v

    @field_validator("time_slicing_replicas")
    @classmethod
    def _replicas(cls, v: Optional[int], info: ValidationInfo) -> Optional[int]:
        if "gpu_sharing" not in info.data:
            return v  # gpu_sharing failed its own check, reported there
        if v is not None and info.data.get("gpu_sharing") != "time-slicing":
            raise ValueError("applies only with gpu_sharing: time-slicing")
        if v is None and info.data.get("gpu_sharing") == "time-slicing":
            raise ValueError("is required with gpu_sharing: time-slicing: how many pods share one GPU")
        return v

    @field_validator("mig_profile")
    @classmethod
    def _mig_profile(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        if "gpu_sharing" not in info.data:
            return v  # gpu_sharing failed its own check, reported there
        if v is not None and info.data.get("gpu_sharing") != "mig":
            raise ValueError("applies only with gpu_sharing: mig")
        if v is None and info.data.get("gpu_sharing") == "mig":
            raise ValueError("is required with gpu_sharing: mig: the layout of every GPU of the pool, e.g. all-1g.10gb")
        if v is not None and not re.fullmatch(r"all-(disabled|balanced|\d+g\.\d+gb(\.me)?)", v):
            raise ValueError("must be a MIG layout name the MIG manager knows, e.g. all-1g.10gb, all-3g.40gb or all-balanced")
        return v

    @model_validator(mode="after")
    def _sizes(self, info: ValidationInfo) -> "Pool":
        def show(name: str) -> str:
            value = getattr(self, name)
            return f"{name} ({value}{'' if name in self.model_fields_set else ', the default'})"

        problems = []
        if self.min_nodes > self.max_nodes:
            problems.append(f"{show('min_nodes')} must not exceed {show('max_nodes')}")
        elif not self.min_nodes <= self.desired_nodes <= self.max_nodes:
            problems.append(f"{show('desired_nodes')} must be between {show('min_nodes')} and {show('max_nodes')}")
        if self.anti_affinity and self.max_nodes > 5:
            problems.append(f"anti_affinity pools hold at most 5 nodes on OVHcloud MKS; {show('max_nodes')} is more")
        if self.role == "system" and self.min_nodes < 1:
            problems.append("a system pool needs min_nodes >= 1: cluster services must always have a node")
        if self.autoscale and _provider(info) == "existing":
            problems.append("autoscale is decided by whoever runs the existing cluster; remove it")
        if problems:
            raise ValueError("; ".join(problems))
        return self


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
    data_project: bool = Field(
        default=True,
        description="put the buckets in a project of their own, so that the platform's API key reaches only them",
    )

    @field_validator("project_id")
    @classmethod
    def _uuid(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", v):
            raise ValueError("must be a Scaleway project id (a lowercase UUID)")
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
    driver_preinstalled: bool = True
    toolkit_preinstalled: bool = False
    gpu_operator_preinstalled: bool = False
    object_store: Optional[ExistingObjectStore] = None
    # the cluster's block-storage CSI driver, for the platform's Retain storage classes (none if unset)
    block_storage_provisioner: Optional[str] = None
    block_storage_parameters: dict[str, str] = Field(default_factory=dict)

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Z]{2}", v):
            raise ValueError("must be an ISO 3166 alpha-2 country code in capitals, e.g. FR")
        return v


class Network(_Model):
    cidr: str = "10.42.0.0/16"
    gateway: bool = True

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            net = ipaddress.IPv4Network(v, strict=True)
        except ValueError as exc:
            raise ValueError(f"not an IPv4 CIDR block ({exc})") from None
        if not any(net.subnet_of(block) for block in _RFC1918):
            raise ValueError("must be a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
        if net.prefixlen > 24 or net.prefixlen < 8:
            raise ValueError("prefix length must be between /8 and /24")
        return v


class Bucket(_Model):
    name: str
    versioning: bool = True
    encryption: bool = True
    protect: bool = True  # `pulumi destroy` refuses to delete it: datasets and checkpoints are not lost by accident
    # lifecycle rules (Scaleway; pulumi-ovh's bucket has no lifecycle settings)
    noncurrent_expiration_days: Optional[int] = Field(default=None, ge=1, le=3650, strict=True)
    abort_incomplete_upload_days: int = Field(default=7, ge=1, le=365, strict=True)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _dns_label(v, "bucket name", 30)

    @field_validator("noncurrent_expiration_days", "abort_incomplete_upload_days")
    @classmethod
    def _lifecycle(cls, v: Any, info: ValidationInfo) -> Any:
        _only_for(info.field_name, ("scaleway",), info)
        return v


class ObjectStorage(_Model):
    region: Optional[str] = None

    @field_validator("region")
    @classmethod
    def _region(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        provider = (info.context or {}).get("provider")
        if v is None or provider not in CATALOG_PROVIDERS:
            return v
        known = sorted({r.object_storage_region for r in _catalog.load().regions(provider).values()})
        if v.upper() not in {k.upper() for k in known}:
            raise ValueError(f"not an object-storage region of {PROVIDER_TITLES[provider]}; allowed: {', '.join(known)}")
        return v
    buckets: tuple[Bucket, ...] = (Bucket(name="datasets"), Bucket(name="checkpoints"))

    @field_validator("buckets")
    @classmethod
    def _unique(cls, v: tuple[Bucket, ...]) -> tuple[Bucket, ...]:
        dupes = _repeated(b.name for b in v)
        if dupes:
            raise ValueError(f"bucket names must be unique; repeated: {', '.join(dupes)}")
        return v


# namespaces the platform itself uses: a team may not take one of these names
PLATFORM_NAMESPACES = (
    "gpu-operator", "kueue-system", "jobset-system", "kubeflow-system", "csi-s3", "monitoring",
    "keda", "cert-manager", "serving", "default", "kube-system", "kube-public", "kube-node-lease",
)
# a registry and optional path, as image references start: no scheme, no trailing slash, no tag
_REGISTRY = re.compile(r"[a-z0-9.-]+\.[a-z]{2,63}(:\d+)?(/[a-z0-9._-]+)*|(localhost|127\.0\.0\.1):\d+(/[a-z0-9._-]+)*")
_IMAGE = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$")


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
    acme: Optional[Acme] = None
    # jobs of a team pending longer than this raise an alert
    pending_alert_minutes: int = Field(default=60, ge=5, le=10080, strict=True)

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
        if not _IMAGE.match(v) or v.endswith(":latest"):
            raise ValueError("must be a full image reference with a pinned tag or digest (registry/path:tag), never :latest")
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


class Team(_Model):
    name: str
    gpu_quota: dict[str, Annotated[int, Field(strict=True)]] = Field(default_factory=dict)
    # GPUs of each model the team may borrow from the cohort beyond its quota (unset: no limit)
    gpu_borrowing_limit: dict[str, Annotated[int, Field(strict=True, ge=0)]] = Field(default_factory=dict)
    fair_share_weight: int = Field(default=1, ge=0, le=1000, strict=True)
    # identity-provider groups whose members work in the team's namespace
    groups: tuple[str, ...] = ()
    # CPU cores and memory for the whole namespace (unset: bounded by the LimitRange only)
    cpu_quota: Optional[int] = Field(default=None, ge=1, strict=True)
    memory_quota_gib: Optional[int] = Field(default=None, ge=1, strict=True)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        _dns_label(v, "team name", 40)
        if v in PLATFORM_NAMESPACES:
            raise ValueError(f"{v!r} is a namespace the platform uses; the team's namespace would be shared with it")
        return v

    @field_validator("gpu_quota", "gpu_borrowing_limit")
    @classmethod
    def _quota(cls, v: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        models = (info.context or {}).get("pool_gpu_models")
        for model, count in v.items():
            if count < 0:
                raise ValueError(f"quota for {model!r} must be >= 0, got {count}")
            if models is not None and model not in models:
                allowed = ", ".join(sorted(models)) or "none: no pool of this stack has GPUs"
                raise ValueError(f"GPU model {model!r} is not provided by any pool of this stack; allowed: {allowed}")
        return v

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for group in v:
            if not group or len(group) > 253 or any(c.isspace() for c in group):
                raise ValueError(f"group {group!r} must be a non-empty name without spaces, as the identity provider sends it")
        return v

    @property
    def namespace(self) -> str:
        return self.name


class Policy(_Model):
    """The stack's sovereignty and safety policy settings (docs/sovereignty.md)."""

    area: Literal["france", "eu"] = "france"
    allowed_providers: tuple[Literal["ovh", "scaleway", "existing"], ...] = ("ovh", "scaleway", "existing")
    secnumcloud_only: bool = False
    required_labels: tuple[str, ...] = ("owner", "team", "cost-centre")
    # registries the admission policies accept images from (prefixes)
    allowed_registries: tuple[str, ...] = (
        "ghcr.io/infratech-souveraine/",
        "docker.io/vllm/",
        "vllm/",
    )
    levels: dict[str, Literal["advisory", "mandatory", "disabled"]] = Field(default_factory=dict)
    exceptions: dict[str, str] = Field(default_factory=dict)

    @field_validator("levels", "exceptions")
    @classmethod
    def _rule_ids(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        from ..policy.rules import BY_ID

        unknown = sorted(set(v) - set(BY_ID))
        if unknown:
            raise ValueError(f"unknown rule id(s) {', '.join(unknown)}; rules: {', '.join(BY_ID)}")
        if info.field_name == "exceptions":
            short = [k for k, reason in v.items() if len(reason.strip()) < 20]
            if short:
                raise ValueError(f"an exception needs its reason written out (20 characters or more): {', '.join(short)}")
        return v

    @field_validator("allowed_registries")
    @classmethod
    def _registries(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in v:
            if not re.fullmatch(r"[a-z0-9.-]+(:\d+)?/([a-z0-9._-]+/)*", prefix) and not re.fullmatch(r"[a-z0-9._-]+/", prefix):
                raise ValueError(f"{prefix!r} must be a registry or repository prefix ending in '/', e.g. ghcr.io/my-org/")
        return v

    @field_validator("required_labels")
    @classmethod
    def _labels(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for key in v:
            _check_label_key(key)
        return v

    def settings(self):
        from ..policy.model import Settings

        return Settings(
            area=self.area,
            allowed_providers=tuple(self.allowed_providers),
            secnumcloud_only=self.secnumcloud_only,
            required_labels=tuple(self.required_labels),
            levels=dict(self.levels),
            exceptions=dict(self.exceptions),
        )


class StackConfig(_Model):
    """The whole stack, as read from ``stacks/Pulumi.<stack>.yaml``."""

    provider: str
    name: str = "infratech"
    region: Optional[str] = Field(default=None, validate_default=True)
    labels: Labels = Field(default_factory=dict)
    ovh: OvhSettings = OvhSettings()
    scaleway: ScalewaySettings = ScalewaySettings()
    kubeconfig: Optional[SecretStr] = None
    object_store_access_key_id: Optional[SecretStr] = None
    object_store_secret_access_key: Optional[SecretStr] = None
    existing: Optional[ExistingSettings] = Field(default=None, validate_default=True)
    network: Network = Network()
    pools: tuple[Pool, ...] = Field(min_length=1)
    object_storage: ObjectStorage = ObjectStorage()
    platform: Platform = Platform()
    teams: tuple[Team, ...] = ()
    budget_eur_per_month: Optional[int] = Field(default=None, ge=0, strict=True)
    budget_enforced: bool = False
    policy: Policy = Field(default=Policy(), validate_default=True)  # checked against platform.image_registry

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        if v not in PROVIDERS:
            known = " (it is in the price catalog, see `infratech cost compare`, but has no cluster component yet)"
            raise ValueError(f"unknown provider{known if v in PROVIDER_TITLES else ''}; allowed: {', '.join(PROVIDERS)}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _dns_label(v, "name", 30)

    @field_validator("region")
    @classmethod
    def _region(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        provider = info.data.get("provider")
        if provider is None:
            return v
        if provider == "existing":
            return _dns_label(v, "region (a name for where the cluster runs)", 63) if v is not None else "onprem"
        regions = _catalog.load().regions(provider)
        if v is None:
            allowed = ", ".join(sorted(r for r, facts in regions.items() if facts.kubernetes))
            raise ValueError(f"is required for {PROVIDER_TITLES[provider]}; allowed: {allowed}")
        if v not in regions or not regions[v].kubernetes:
            allowed = ", ".join(sorted(r for r, facts in regions.items() if facts.kubernetes))
            raise ValueError(f"not a region where {PROVIDER_TITLES[provider]} runs managed Kubernetes; allowed: {allowed}")
        return v

    @field_validator("ovh", "scaleway", "network", "object_storage")
    @classmethod
    def _provider_block(cls, v: Any, info: ValidationInfo) -> Any:
        owners = {"ovh": ("ovh",), "scaleway": ("scaleway",)}.get(info.field_name, CATALOG_PROVIDERS)
        _only_for(info.field_name, owners, info)
        return v

    @field_validator(*SECRET_KEYS)
    @classmethod
    def _secret(cls, v: Optional[SecretStr], info: ValidationInfo) -> Optional[SecretStr]:
        if v is None:
            return v
        _only_for(info.field_name, ("existing",), info)
        secret_keys = (info.context or {}).get("secret_keys")
        if secret_keys is not None and info.field_name not in secret_keys:
            raise ValueError(
                f"is a credential and must be a Pulumi secret: pulumi config set --secret {NAMESPACE}:{info.field_name} ..."
            )
        return v

    @field_validator("existing")
    @classmethod
    def _existing(cls, v: Optional[ExistingSettings], info: ValidationInfo) -> Optional[ExistingSettings]:
        provider = info.data.get("provider")
        if v is not None:
            _only_for("existing", ("existing",), info)
        if provider != "existing":
            return v
        if v is None:
            raise ValueError("is required for provider existing: kubeconfig_path (or the secret kubeconfig) and what the cluster has")
        # a secret that failed its own check is missing from info.data: reported already, not again
        has_secret = info.data.get("kubeconfig") is not None
        if "kubeconfig" in info.data and has_secret == (v.kubeconfig_path is not None):
            raise ValueError(
                "give the cluster's kubeconfig once: either existing.kubeconfig_path or the secret "
                f"{NAMESPACE}:kubeconfig (pulumi config set --secret), not both and not neither"
            )
        keys = [k for k in ("object_store_access_key_id", "object_store_secret_access_key") if k in info.data and info.data[k] is None]
        if v.object_store is not None and keys:
            raise ValueError(f"object_store needs its credentials as the stack secrets {', '.join(NAMESPACE + ':' + k for k in keys)}")
        return v

    @field_validator("pools")
    @classmethod
    def _pools(cls, v: tuple[Pool, ...], info: ValidationInfo) -> tuple[Pool, ...]:
        problems = []
        plan = _ovh_plan(info.data.get("provider"), info.data.get("region"), info.data.get("ovh"))
        gpu = [p.name for p in v if plan == "standard" and _catalog.load().offer("ovh", p.flavor or "") is not None
               and _catalog.load().offer("ovh", p.flavor).is_gpu]
        if gpu:
            problems.append(f"GPU pool(s) {', '.join(gpu)} on an MKS Standard cluster, which has no GPU node pools "
                            "(ovh/public-cloud-roadmap#1107: GPUs are in Gravelines 1-AZ); use plan 'free' in GRA11")
        dupes = _repeated(p.name for p in v)
        if dupes:
            problems.append(f"pool names must be unique; repeated: {', '.join(dupes)}")
        if not any(p.role == "system" for p in v):
            problems.append("at least one pool needs role 'system': GPU pools are tainted, cluster services need somewhere to run")
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @field_validator("policy")
    @classmethod
    def _image_registry_allowed(cls, v: Policy, info: ValidationInfo) -> Policy:
        platform = info.data.get("platform")
        registry = platform.image_registry if platform else None
        if registry and not any(f"{registry}/".startswith(prefix) for prefix in v.allowed_registries):
            raise ValueError(f"allowed_registries does not admit platform.image_registry {registry!r}: "
                             f"add {registry + '/'!r}, or the admission policy refuses the cluster's own images")
        return v

    @field_validator("teams")
    @classmethod
    def _teams(cls, v: tuple[Team, ...]) -> tuple[Team, ...]:
        dupes = _repeated(t.name for t in v)
        if dupes:
            raise ValueError(f"team names must be unique; repeated: {', '.join(dupes)}")
        return v

    # -- derived views (computed, never stored) ----------------------------------------------
    def offer(self, pool: Pool) -> _catalog.Offer:
        """What a node of ``pool`` is: the catalog offer, or for an existing cluster what the
        stack says the nodes have (price unknown: the catalog does not sell it)."""
        if self.provider == "existing":
            return _catalog.Offer(
                provider="existing",
                flavor=pool.flavor or "existing",
                gpu_model=pool.gpu_model,
                gpu_count=pool.gpus_per_node or 0,
                gpu_memory_gib=None,
                vcpus=None,
                ram_gib=None,
                eur_per_hour=None,
                regions=None,
                source="stack configuration",
                as_of=None,
            )
        offer = _catalog.load().offer(self.provider, pool.flavor)
        assert offer is not None, "flavours are validated against the catalog"
        return offer

    def zone(self, pool: Pool) -> Optional[str]:
        """The zone a pool's nodes run in: its own, else the stack's default (Scaleway), else none."""
        if pool.availability_zone:
            return pool.availability_zone
        if self.provider == "scaleway":
            return self.scaleway.zone or self.region_facts.zones[0]
        return None

    @property
    def region_facts(self) -> _catalog.Region:
        assert self.provider in CATALOG_PROVIDERS, "existing clusters have no catalog region"
        region = _catalog.load().region(self.provider, self.region)
        assert region is not None
        return region

    @property
    def ovh_plan(self) -> Optional[str]:
        """The MKS plan: the stack's, else the first the region sells (catalog ``mks_plans``)."""
        return _ovh_plan(self.provider, self.region, self.ovh)

    @property
    def object_storage_region(self) -> str:
        return self.object_storage.region or self.region_facts.object_storage_region

    def bucket_name(self, bucket: Bucket) -> str:
        return f"{self.name}-{bucket.name}"
