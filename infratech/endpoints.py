"""The S3 endpoints of the providers' object storage, for the program (what the platform's
clients reach) and the state backend (where the Pulumi state goes): one place per provider."""

from __future__ import annotations

# OVHcloud: s3.<region>.io.cloud.ovh.net, region lower-case (GRA -> gra); Scaleway:
# s3.<region>.scw.cloud (fr-par); 3DS Outscale OOS: oos.<region>.outscale.com
_PATTERNS = {
    "ovh": "https://s3.{region}.io.cloud.ovh.net",
    "scaleway": "https://s3.{region}.scw.cloud",
    "outscale": "https://oos.{region}.outscale.com",
}


def s3_endpoint(provider: str, storage_region: str) -> str:
    """The https URL of ``provider``'s S3 endpoint in ``storage_region`` (KeyError for another provider)."""
    return _PATTERNS[provider].format(region=storage_region.lower())
