"""The stack configuration models: one frozen pydantic model per concern, validated against the
catalog (flavours per region, regions per provider). Read by :mod:`infratech.config.load`."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .. import catalog as _catalog

NAMESPACE = "infratech"
PROVIDERS = ("ovh",)  # providers whose Cluster component exists; the catalog knows more
PROVIDER_TITLES = {"ovh": "OVHcloud", "scaleway": "Scaleway", "outscale": "3DS Outscale"}
RESERVED_LABEL_PREFIX = "infratech.io/"
GPU_TAINT_KEY = "nvidia.com/gpu"

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_K8S_VERSION = re.compile(r"^1\.(\d+)$")
_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _context_region(info: ValidationInfo) -> Optional["_catalog.Region"]:
    ctx = info.context or {}
    if ctx.get("provider") not in PROVIDERS or not ctx.get("region"):
        return None
    return _catalog.load().region(ctx["provider"], ctx["region"])


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


class Pool(_Model):
    """A node pool. GPU pools get the GPU label and taint from the platform, not from the user."""

    name: str
    flavor: str
    role: Literal["system", "training", "inference"]
    min_nodes: int = Field(default=0, ge=0, le=1000, strict=True)
    max_nodes: int = Field(default=1, ge=1, le=1000, strict=True)
    desired_nodes: int = Field(default=1, ge=0, le=1000, strict=True)
    autoscale: bool = False
    anti_affinity: bool = False
    monthly_billed: bool = False
    availability_zone: Optional[str] = None
    labels: Labels = Field(default_factory=dict)
    taints: tuple[Taint, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _dns_label(v, "pool name", 20)

    @field_validator("flavor")
    @classmethod
    def _flavor(cls, v: str, info: ValidationInfo) -> str:
        region = _context_region(info)
        if region is None:
            return v  # the provider or region is reported on its own
        cat, title = _catalog.load(), PROVIDER_TITLES[region.provider]
        sold = ", ".join(cat.flavors_in(region.provider, region.name))
        offer = cat.offer(region.provider, v)
        if offer is None:
            raise ValueError(f"not a flavour {title} sells in {region.name}; allowed: {sold}")
        if not offer.sold_in(region.name):
            raise ValueError(
                f"{title} sells {v} only in {', '.join(offer.regions or ())}, not in {region.name}; allowed there: {sold}"
            )
        return v

    @field_validator("role")
    @classmethod
    def _role(cls, v: str, info: ValidationInfo) -> str:
        flavor, provider = info.data.get("flavor"), (info.context or {}).get("provider")
        offer = _catalog.load().offer(provider, flavor) if provider in PROVIDERS and flavor else None
        if offer is None:
            return v  # the flavour is reported on its own
        if v == "system" and offer.is_gpu:
            raise ValueError(f"'system' pools must use a CPU flavour, {flavor!r} has GPUs")
        if v != "system" and not offer.is_gpu:
            raise ValueError(f"{v!r} pools need a GPU flavour, {flavor!r} has none")
        return v

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

    @model_validator(mode="after")
    def _sizes(self) -> "Pool":
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
        if problems:
            raise ValueError("; ".join(problems))
        return self


class OvhSettings(_Model):
    service_name: Optional[str] = Field(
        default=None, description="Public Cloud project id; OVH_CLOUD_PROJECT_SERVICE when unset"
    )
    kube_version: str = "1.34"
    plan: Literal["free", "standard"] = "standard"
    update_policy: Literal["ALWAYS_UPDATE", "MINIMAL_DOWNTIME", "NEVER_UPDATE"] = "MINIMAL_DOWNTIME"
    api_allowed_cidrs: tuple[str, ...] = ()
    gateway_model: Literal["s", "m", "l", "xl", "2xl"] = "s"
    vlan_id: int = Field(default=0, ge=0, le=4000)
    private_network_routing_as_default: bool = True

    @field_validator("kube_version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            raise ValueError(f"write the version in quotes, e.g. \"1.31\": YAML reads an unquoted {v} as a number")
        return v

    @field_validator("kube_version")
    @classmethod
    def _version(cls, v: str) -> str:
        m = _K8S_VERSION.match(v)
        if not m or int(m.group(1)) < 30:
            raise ValueError("must be a Kubernetes minor version '1.N' with N >= 30 (admission policies need 1.30)")
        return v

    @field_validator("api_allowed_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in v:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a CIDR block ({exc})") from None
            if net.prefixlen < 8:
                raise ValueError(f"{cidr!r} opens the Kubernetes API to a large part of the Internet (wider than /8); list the networks that need it")
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

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _dns_label(v, "bucket name", 30)


class ObjectStorage(_Model):
    region: Optional[str] = None

    @field_validator("region")
    @classmethod
    def _region(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        provider = (info.context or {}).get("provider")
        if v is None or provider not in PROVIDERS:
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


class Platform(_Model):
    gpu_operator: bool = True
    kueue: bool = True
    trainer: bool = True
    storage: bool = True
    monitoring: bool = True
    tenancy: bool = True
    serving: bool = True


class Team(_Model):
    name: str
    gpu_quota: dict[str, Annotated[int, Field(strict=True)]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _dns_label(v, "team name", 40)

    @field_validator("gpu_quota")
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


class StackConfig(_Model):
    """The whole stack, as read from ``stacks/Pulumi.<stack>.yaml``."""

    provider: str
    name: str = "infratech"
    region: str
    labels: Labels = Field(default_factory=dict)
    ovh: OvhSettings = OvhSettings()
    network: Network = Network()
    pools: tuple[Pool, ...] = Field(min_length=1)
    object_storage: ObjectStorage = ObjectStorage()
    platform: Platform = Platform()
    teams: tuple[Team, ...] = ()
    budget_eur_per_month: Optional[int] = Field(default=None, ge=0, strict=True)
    budget_enforced: bool = False

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        if v not in PROVIDERS:
            raise ValueError(f"unknown provider; allowed: {', '.join(PROVIDERS)}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _dns_label(v, "name", 30)

    @field_validator("region")
    @classmethod
    def _region(cls, v: str, info: ValidationInfo) -> str:
        provider = info.data.get("provider")
        if provider is None:
            return v
        regions = _catalog.load().regions(provider)
        if v not in regions or not regions[v].kubernetes:
            allowed = ", ".join(sorted(r for r, facts in regions.items() if facts.kubernetes))
            raise ValueError(f"not a region where {PROVIDER_TITLES[provider]} runs managed Kubernetes; allowed: {allowed}")
        return v

    @field_validator("pools")
    @classmethod
    def _pools(cls, v: tuple[Pool, ...]) -> tuple[Pool, ...]:
        problems = []
        dupes = _repeated(p.name for p in v)
        if dupes:
            problems.append(f"pool names must be unique; repeated: {', '.join(dupes)}")
        if not any(p.role == "system" for p in v):
            problems.append("at least one pool needs role 'system': GPU pools are tainted, cluster services need somewhere to run")
        if problems:
            raise ValueError("; ".join(problems))
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
        offer = _catalog.load().offer(self.provider, pool.flavor)
        assert offer is not None, "flavours are validated against the catalog"
        return offer

    @property
    def region_facts(self) -> _catalog.Region:
        region = _catalog.load().region(self.provider, self.region)
        assert region is not None
        return region

    @property
    def object_storage_region(self) -> str:
        return self.object_storage.region or self.region_facts.object_storage_region

    def bucket_name(self, bucket: Bucket) -> str:
        return f"{self.name}-{bucket.name}"
