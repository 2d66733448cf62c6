"""What every configuration section shares: names, limits, field checks and the base model."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

from .. import catalog as _catalog

NAMESPACE = "infratech"
PROVIDERS = ("ovh", "scaleway", "outscale", "existing", "baremetal")  # providers whose Cluster component exists
CATALOG_PROVIDERS = ("ovh", "scaleway", "outscale")  # providers whose regions and flavours come from the catalog
SELF_BUILT_PROVIDERS = ("outscale", "baremetal")  # machines made into an RKE2 cluster by the node roles
PROVIDER_TITLES = {"ovh": "OVHcloud", "scaleway": "Scaleway", "outscale": "3DS Outscale", "existing": "an existing cluster",
                   "baremetal": "bare-metal servers"}
# stack keys that hold a credential: accepted only as Pulumi secrets (`pulumi config set --secret`)
SECRET_KEYS = ("kubeconfig", "object_store_access_key_id", "object_store_secret_access_key", "mirror_password")
RESERVED_LABEL_PREFIX = "infratech.io/"
GPU_TAINT_KEY = "nvidia.com/gpu"
# on the nodes of pools with role slurm: only Slurm's own pods (slurmd) tolerate it (docs/slurm.md)
SLURM_TAINT_KEY = "infratech.io/slurm"

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




def _country_code(v: str) -> str:
    """Where a cluster or its servers run, for residency checks: ISO 3166 alpha-2, in capitals."""
    if not re.fullmatch(r"[A-Z]{2}", v):
        raise ValueError("must be an ISO 3166 alpha-2 country code in capitals, e.g. FR")
    return v


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
