"""Where the stack's Pulumi state and secrets live: ``state:`` (docs/state.md)."""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from ..state import SECRETS_PROVIDERS
from .common import _Model

BACKEND_SCHEMES = ("s3", "file", "https", "azblob", "gs")


class StateSettings(_Model):
    backend: Optional[str] = Field(
        default=None,
        description="Pulumi backend URL; unset: a versioned, encrypted bucket <name>-pulumi-state on the stack's own S3 endpoint",
    )
    secrets_provider: str = Field(default="passphrase", description="passphrase, or hashivault://<key> for a Vault run in France")

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in BACKEND_SCHEMES or not (parts.netloc or parts.path):
            raise ValueError(f"must be a Pulumi backend URL ({', '.join(s + '://…' for s in BACKEND_SCHEMES)})")
        return v

    @field_validator("secrets_provider")
    @classmethod
    def _secrets(cls, v: str) -> str:
        scheme = v.split("://", 1)[0]
        if scheme not in SECRETS_PROVIDERS or (scheme != "passphrase" and "://" not in v):
            raise ValueError(f"must be passphrase or <provider>://<key>; providers: {', '.join(SECRETS_PROVIDERS)}")
        return v
