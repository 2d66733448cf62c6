"""How people reach the cluster's API: its endpoint and CA (from the provider's kubeconfig, never
its credentials), the OpenID Connect issuer its API server trusts, and each team's groups. The
stack exports this as ``access``; ``infratech kubeconfig`` writes team members' kubeconfigs from it
(docs/access.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pulumi
import yaml

from ..config import StackConfig
from .handle import ClusterHandle
from .platform.tenancy import team_groups


def oidc_settings(cfg: StackConfig) -> Optional[dict[str, Any]]:
    """The issuer the API server trusts, as the stack configures it (``<provider>.oidc``), or None."""
    settings = getattr(cfg, cfg.provider, None)
    o = getattr(settings, "oidc", None)
    if o is None:
        return None
    return {
        "issuer_url": o.issuer_url,
        "client_id": o.client_id,
        "username_claim": o.username_claim,
        "username_prefix": o.username_prefix,
        "groups_claims": list(o.groups_claims),
        "groups_prefix": o.groups_prefix,
    }


def api_endpoint(kubeconfig: Optional[str], context: Optional[str] = None) -> Optional[dict[str, Optional[str]]]:
    """The server and CA of a kubeconfig (its content, or the path of a file), or None when it is
    not known (the offline plan) or not readable. Nothing else of it: no user, no key, no token."""
    if not kubeconfig:
        return None
    text = kubeconfig
    if "\n" not in kubeconfig and Path(kubeconfig).expanduser().is_file():
        text = Path(kubeconfig).expanduser().read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict) or not data.get("clusters"):
        return None
    contexts = {c["name"]: c.get("context") or {} for c in data.get("contexts") or []}
    wanted = (contexts.get(context or data.get("current-context") or "") or {}).get("cluster")
    clusters = {c["name"]: c.get("cluster") or {} for c in data["clusters"]}
    cluster = clusters.get(wanted) if wanted in clusters else next(iter(clusters.values()))
    return {"server": cluster.get("server"), "certificate_authority_data": cluster.get("certificate-authority-data")}


def access(cfg: StackConfig, cluster: ClusterHandle) -> dict[str, Any]:
    """The ``access`` output: ``api`` (server and CA, not secret: both are public), ``oidc`` and
    ``team_groups``."""
    api = pulumi.Output.unsecret(
        pulumi.Output.all(cluster.kubeconfig, cluster.kube_context).apply(lambda kc: api_endpoint(kc[0], kc[1]))
    )
    return {"api": api, "oidc": oidc_settings(cfg), "team_groups": {t.name: team_groups(t) for t in cfg.teams}}
