"""The private network and the object storage: ``network:``, ``object_storage:``."""

from __future__ import annotations

import ipaddress

from typing import Any, Optional

from pydantic import Field, ValidationInfo, field_validator

from .. import catalog as _catalog
from .common import CATALOG_PROVIDERS, PROVIDER_TITLES, _Model, _RFC1918, _dns_label, _only_for, _repeated

# link-local (cloud metadata services answer there) and carrier-grade NAT (providers' internal
# services and on-premises gear): no team pod reaches them, whatever the store's address
NEVER_REACHABLE = ("169.254.0.0/16", "100.64.0.0/10")


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
    # the store's addresses, the only HTTPS destinations of team pods (docs/platform.md, "Egress")
    egress_cidrs: tuple[str, ...] = ()

    @field_validator("egress_cidrs")
    @classmethod
    def _egress(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        problems = []
        for cidr in v:
            try:
                net = ipaddress.ip_network(cidr)
            except ValueError:
                problems.append(f"{cidr}: not a network")
                continue
            if net.prefixlen < 16:
                problems.append(f"{cidr}: wider than /16, not an endpoint's addresses")
            if any(net.overlaps(ipaddress.ip_network(n)) for n in NEVER_REACHABLE if net.version == 4):
                problems.append(f"{cidr}: overlaps {' or '.join(NEVER_REACHABLE)}, never reachable from team pods")
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @field_validator("buckets")
    @classmethod
    def _unique(cls, v: tuple[Bucket, ...]) -> tuple[Bucket, ...]:
        dupes = _repeated(b.name for b in v)
        if dupes:
            raise ValueError(f"bucket names must be unique; repeated: {', '.join(dupes)}")
        return v


# namespaces the platform itself uses: a team may not take one of these names
