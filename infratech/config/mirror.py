"""An in-country mirror of every image and chart the platform pulls: ``mirror:`` (docs/supply-chain.md).

With it set, every image reference in the platform's values becomes
``<registry>/<prefix>/<original host>/<path>:<tag>`` and the charts come from ``chart_repository``;
the policy rule ``images-from-mirror`` fails the plan if any image would still come from elsewhere.
The pull password is the stack secret ``infratech:mirror_password``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from pydantic import field_validator

from .common import _Model

# the project root: a relative ca_file is read from there, where Pulumi.yaml is and `pulumi up` runs
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# host[:port], as an image reference starts (distribution's reference grammar: domain components of
# letters, digits and '-', separated by '.', optional :port); no scheme, no path, no trailing slash
_HOST = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$")
# path components of a repository name (distribution reference grammar: [a-z0-9]+ joined by '.', '_', '__' or '-')
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")


def _host(v: str, what: str) -> str:
    if "://" in v:
        raise ValueError(f"{what} is a host, not a URL: remove the scheme ({v.split('://', 1)[0]}://)")
    if v.endswith("/"):
        raise ValueError(f"{what} ends with '/': give the host (and :port) alone")
    if "/" in v:
        raise ValueError(f"{what} holds a path: give the host (and :port) alone, the path goes in prefix")
    if not _HOST.match(v):
        raise ValueError(f"{what} is not a host[:port]")
    return v


class Mirror(_Model):
    """The registry the cluster pulls every image from, and the OCI repository of the charts."""

    registry: str  # host[:port], e.g. rg.fr-par.scw.cloud or registry.example.fr:5000
    prefix: str = ""  # path under the registry, e.g. infratech/mirror ('' for none)
    chart_repository: Optional[str] = None  # oci://host[:port]/path: the charts, pushed as OCI artifacts
    ca_file: Optional[str] = None  # PEM bundle of the CA that signed the registry's certificate
    username: Optional[str] = None  # with the stack secret infratech:mirror_password

    @field_validator("registry")
    @classmethod
    def _registry(cls, v: str) -> str:
        return _host(v, "the registry")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        bad = [c for c in v.split("/") if not _COMPONENT.match(c)] if v else []
        if bad or v.startswith("/") or v.endswith("/"):
            raise ValueError("each path component must be lowercase letters and digits, joined by "
                             "'.', '_', '__' or '-', components separated by single '/', no leading or trailing '/'"
                             + (f" (not {bad[0]!r})" if bad and bad[0] else ""))
        return v

    @field_validator("chart_repository")
    @classmethod
    def _chart_repository(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        if not v.startswith("oci://"):
            raise ValueError("must be an OCI reference, oci://host[:port]/path")
        host, _, path = v[len("oci://"):].partition("/")
        _host(host, "its host")
        if v.endswith("/") or any(not _COMPONENT.match(c) for c in path.split("/") if path):
            raise ValueError("path components as in prefix, no trailing '/'")
        return v

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        path = Path(v) if Path(v).is_absolute() else PROJECT_ROOT / v
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot be read: {exc.strerror or exc}") from None
        if not _PEM.search(data):
            raise ValueError("is not a PEM certificate bundle (no -----BEGIN CERTIFICATE----- block)")
        return v

    @property
    def base(self) -> str:
        """``registry/prefix/``: what every mirrored image reference starts with."""
        return "/".join(p for p in (self.registry, self.prefix) if p) + "/"
