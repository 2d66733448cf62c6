"""Where a stack's Pulumi state and its secrets live: a self-managed backend in a versioned,
encrypted bucket of the stack's own provider and region, and a secrets provider run in France.

The state holds every resource of the stack and its secrets (encrypted). The default Pulumi
backend is a hosted service outside the EU; here the default is ``s3://<name>-pulumi-state`` on
the stack's own S3 endpoint, the form Pulumi's DIY-backend guide documents for S3-compatible
servers (``endpoint``, ``region``, ``s3ForcePathStyle``; pulumi.com/docs/iac/guides/basics/
using-a-diy-backend). ``describe`` reads any backend URL back into where it is, for the
``state-in-region`` rule and ``infratech backend``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Optional
from urllib.parse import parse_qs, urlencode, urlsplit

from . import catalog as _catalog

# the S3 endpoints of the providers this project provisions on, by host name
_ENDPOINTS = {
    "ovh": re.compile(r"^s3\.(?P<region>[a-z0-9-]+)\.io\.cloud\.ovh\.net$"),
    "scaleway": re.compile(r"^s3\.(?P<region>[a-z0-9-]+)\.scw\.cloud$"),
    "outscale": re.compile(r"^oos\.(?P<region>[a-z0-9-]+)\.outscale\.com$"),
}
HOSTED = ("api.pulumi.com", "app.pulumi.com")
# Pulumi secrets providers (`pulumi stack init --secrets-provider`): where each keeps its key
SECRETS_PROVIDERS = {
    "passphrase": "a passphrase the deployer holds (PULUMI_CONFIG_PASSPHRASE): no key service",
    "hashivault": "HashiCorp Vault's transit engine, run where you run it (in France for this platform)",
    "awskms": "AWS KMS: a US company's key service",
    "azurekeyvault": "Azure Key Vault: a US company's key service",
    "gcpkms": "Google Cloud KMS: a US company's key service",
}
ABROAD_SECRETS = ("awskms", "azurekeyvault", "gcpkms")


@dataclass(frozen=True)
class Backend:
    url: str
    kind: str  # s3 | file | hosted | other
    encryption: str  # what encrypts the state's secrets: the secrets provider's scheme (passphrase, hashivault, …)
    provider: Optional[str] = None  # the S3 endpoint's provider, where it is one of ours
    region: Optional[str] = None
    country: Optional[str] = None  # ISO 3166, where known
    bucket: Optional[str] = None
    endpoint: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)


def state_bucket(name: str) -> str:
    return f"{name}-pulumi-state"


def s3_url(bucket: str, endpoint: str, region: str) -> str:
    host = urlsplit(endpoint).netloc if "://" in endpoint else endpoint
    return f"s3://{bucket}?" + urlencode({"endpoint": host, "region": region, "s3ForcePathStyle": "true"})


def _region_country(provider: str, storage_region: str) -> Optional[str]:
    for region in _catalog.load().regions(provider).values():
        if region.object_storage_region.lower() == storage_region.lower() or region.name.lower() == storage_region.lower():
            return region.country
    return None


def describe(url: str, secrets_provider: str = "passphrase") -> Backend:
    """Where a backend URL keeps the state: for an S3 URL its endpoint's provider, region and
    country (AWS itself when no endpoint is named); a hosted service; a local path."""
    scheme = secrets_provider.split("://", 1)[0]
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") or url == "":
        return Backend(url=url, kind="hosted", encryption=scheme, country="US" if parts.netloc in HOSTED or url == "" else None)
    if parts.scheme == "file":
        return Backend(url=url, kind="file", encryption=scheme)
    if parts.scheme != "s3":
        return Backend(url=url, kind="other", encryption=scheme)
    query = parse_qs(parts.query)
    endpoint = (query.get("endpoint") or [None])[0]
    region = (query.get("region") or [None])[0]
    if endpoint is None:  # AWS S3 itself
        return Backend(url=url, kind="s3", encryption=scheme, provider="aws", region=region, country="US", bucket=parts.netloc)
    host = urlsplit(endpoint).netloc if "://" in endpoint else endpoint.split("/")[0]
    for provider, pattern in _ENDPOINTS.items():
        m = pattern.match(host)
        if m:
            return Backend(url=url, kind="s3", encryption=scheme, provider=provider, region=m["region"],
                           country=_region_country(provider, m["region"]), bucket=parts.netloc, endpoint=host)
    return Backend(url=url, kind="s3", encryption=scheme, bucket=parts.netloc, endpoint=host, region=region)
