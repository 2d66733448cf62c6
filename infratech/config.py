"""Typed stack configuration: the one place that reads ``pulumi.Config``.

Everything else receives a validated, frozen :class:`StackConfig`. Problems in a stack file are
reported all at once, each with its key path (``pools[1].flavor``), the value given and what is
allowed; :class:`StackConfigError` carries them.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Optional

import pulumi
from pulumi.runtime import config as _pulumi_config
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import catalog as _catalog

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


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if key.startswith(RESERVED_LABEL_PREFIX):
            raise ValueError(f"label {key!r} uses the reserved prefix {RESERVED_LABEL_PREFIX!r}, which the platform sets itself")
        _check_label_key(key)
        _check_label_value(key, value)
    return labels


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
    labels: dict[str, str] = Field(default_factory=dict)
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

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_labels(v)

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
        names = [b.name for b in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
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
    labels: dict[str, str] = Field(default_factory=dict)
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

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_labels(v)

    @field_validator("pools")
    @classmethod
    def _pools(cls, v: tuple[Pool, ...]) -> tuple[Pool, ...]:
        problems = []
        names = [p.name for p in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
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
        names = [t.name for t in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
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


# -- errors -------------------------------------------------------------------------------------
class Problem(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    message: str
    given: Any = None


class StackConfigError(pulumi.RunError):
    """Every problem of a stack's configuration. A clean, traceback-free failure under Pulumi."""

    def __init__(self, stack: str, problems: list[Problem]):
        self.stack = stack
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        lines = [f"stack {self.stack!r}: {n} configuration problem{'s' if n != 1 else ''}"]
        for p in self.problems:
            given = "" if p.given is _MISSING else f" (given: {json.dumps(p.given, default=str)})"
            lines.append(f"  {p.path}: {p.message}{given}")
        return "\n".join(lines)


_MISSING = object()

# pydantic's words for YAML shapes, in the words of someone writing YAML
_PLAIN_WORDS = {
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
}


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(stack)"


def _problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        loc = tuple(err["loc"])
        given = err.get("input", _MISSING)
        if err["type"] == "missing":
            given = _MISSING
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not a known key" + _known_keys_hint(loc)
        elif err["type"] in _PLAIN_WORDS:
            msg = _PLAIN_WORDS[err["type"]]
        elif isinstance(given, dict):
            given = _MISSING  # a whole-object error: the message names the fields
        if isinstance(given, (dict, list, tuple)) and len(json.dumps(given, default=str)) > 120:
            given = _MISSING
        problems.append(Problem(path=_path(loc), message=msg, given=given))
    return problems


def _known_keys_hint(loc: tuple) -> str:
    model: Any = StackConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return ""
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return ""
        model = candidates[0]
    return "; allowed: " + ", ".join(model.model_fields)


def _context(raw: dict) -> dict:
    """What field validators need to know of the rest of the stack, read leniently from raw data."""
    def text(value: Any) -> Optional[str]:
        return value.strip() if isinstance(value, str) else None  # as the models see it

    provider, region = text(raw.get("provider")), text(raw.get("region"))
    models: Optional[set[str]] = None
    pools = raw.get("pools")
    if provider in PROVIDERS and isinstance(pools, list):
        cat = _catalog.load()
        models = set()
        for pool in pools:
            flavor = text(pool.get("flavor")) if isinstance(pool, dict) else None
            offer = cat.offer(provider, flavor) if flavor else None
            if offer is None:
                models = None  # a bad flavour is reported on its own; do not guess the models
                break
            if offer.is_gpu:
                models.add(offer.gpu_model_id)
    return {"provider": provider, "region": region, "pool_gpu_models": models}


def parse(raw: dict, stack: str) -> StackConfig:
    """Validate a stack's ``infratech:`` settings (keys without the namespace)."""
    try:
        return StackConfig.model_validate(raw, context=_context(raw))
    except ValidationError as exc:
        raise StackConfigError(stack, _problems(exc)) from None


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value  # a plain string


def raw_from_config(config: Mapping[str, Optional[str]]) -> dict:
    """The ``infratech:*`` keys of a Pulumi config map, namespace removed, decoded from Pulumi's
    string form: structured values arrive as JSON text, scalars as plain text. Keys whose field
    is a string stay text, so that ``name: "2026"`` remains a string."""
    prefix = NAMESPACE + ":"
    string_keys = {k for k, f in StackConfig.model_fields.items() if f.annotation is str}
    raw = {}
    for key in sorted(config):
        if key.startswith(prefix):
            short, value = key[len(prefix):], config[key]
            raw[short] = value if short in string_keys or value is None else _decode(value)
    return raw


def raw_from_pulumi() -> dict:
    """Every ``infratech:*`` key of the running stack."""
    # The language host sets config in-process; older hosts and tests pass it in PULUMI_CONFIG.
    keys = {*pulumi.runtime.get_config_env(), *_pulumi_config.CONFIG.get()}
    return raw_from_config({key: pulumi.runtime.get_config(key) for key in keys})


def load() -> StackConfig:
    """Read and validate the running stack's configuration (the Pulumi program's entry point)."""
    return parse(raw_from_pulumi(), pulumi.get_stack())
