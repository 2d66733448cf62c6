"""Kubeconfigs for team members, without the admin's secrets (docs/access.md).

A team kubeconfig holds the API server's endpoint and CA (the stack's output ``access.api``) and one
of two ways to log in, never the admin kubeconfig's client key or token:

* ``oidc``: where the stack configures an issuer the API server trusts (``scaleway.oidc``,
  ``ovh.oidc``, ``existing.oidc``), the int128/kubelogin credential plugin ``kubectl oidc-login
  get-token`` logs the member in with the company's identity provider; the groups in the ID token
  are those the team's RoleBindings name (``access.team_groups``);
* ``token``: where no issuer is configured, a ServiceAccount ``member-<name>`` in the team's
  namespace, bound to the team's Roles, and a token with an expiry (TokenRequest), made by someone
  whose own kubeconfig may create them. The expiry is written in the kubeconfig
  (extension ``infratech.io/token``) and printed.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import yaml

from ..team_description import READER
from .errors import BadFlag

MEMBER_ROLE = "team-member"  # infratech/program/platform/tenancy.py: what a member may do in the namespace
TOKEN_EXTENSION = "infratech.io/token"
EXEC_API = "client.authentication.k8s.io/v1"
MIN_TOKEN_SECONDS = 600  # kube-apiserver refuses shorter TokenRequests
MAX_TOKEN_SECONDS = 7 * 24 * 3600


class NoAccessOutput(Exception):
    """The stack's outputs have no ``access``: deployed by an infratech older than this CLI."""


def duration_seconds(text: str) -> int:
    """``8h``, ``30m``, ``2d`` as seconds; BadFlag naming ``--duration`` otherwise."""
    match = re.fullmatch(r"(\d+)([mhd])", text or "")
    if not match:
        raise BadFlag(f"--duration: {text!r} is not a duration such as 30m, 8h or 2d")
    seconds = int(match.group(1)) * {"m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if not MIN_TOKEN_SECONDS <= seconds <= MAX_TOKEN_SECONDS:
        raise BadFlag(f"--duration: {text} is outside 10m..7d (the API server refuses under 10 minutes; a week at most here)")
    return seconds


def member_name(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,45}[a-z0-9])?", text or ""):
        raise BadFlag(f"--token-for: {text!r} must be a lowercase DNS label (letters, digits, '-'), at most 47 characters")
    return text


def team_access(outputs: dict[str, Any], stack: str, team: str) -> dict[str, Any]:
    """The stack's ``access`` output with the team's groups checked; BadFlag naming ``--team``."""
    teams = outputs.get("teams") or []
    if team not in teams:
        raise BadFlag(f"--team: {team!r} is not a team of stack {stack!r}; teams: {', '.join(teams) or 'none'}")
    found = outputs.get("access")
    if not isinstance(found, dict):
        raise NoAccessOutput(f"stack {stack!r} exports no `access`: it was deployed by an infratech older than this CLI; `infratech up` it again")
    return found


def endpoint(found: dict[str, Any], stack: str, server: Optional[str], ca_data: Optional[str]) -> tuple[str, Optional[str]]:
    """(server, CA as base64): the flags', else the stack's; BadFlag naming ``--server`` when unknown."""
    api = found.get("api")
    api = api if isinstance(api, dict) else {}  # None or "(computed)" in the offline plan: known once deployed
    server = server or api.get("server")
    if not server:
        raise BadFlag(
            f"--server: the API endpoint of stack {stack!r} is known once it is deployed: use --deployed "
            "(the deployed stack's outputs, Pulumi CLI), or give --server URL and --certificate-authority FILE"
        )
    return server, ca_data or api.get("certificate_authority_data")


def oidc_user(oidc: dict[str, Any]) -> dict[str, Any]:
    """The kubelogin credential plugin (int128/kubelogin README, "Setup"), against the stack's issuer."""
    args = ["oidc-login", "get-token", f"--oidc-issuer-url={oidc['issuer_url']}", f"--oidc-client-id={oidc['client_id']}"]
    return {"exec": {"apiVersion": EXEC_API, "command": "kubectl", "args": args, "interactiveMode": "IfAvailable", "provideClusterInfo": False}}


def token_user(token: str, expires: str) -> dict[str, Any]:
    return {"token": token, "extensions": [{"name": TOKEN_EXTENSION, "extension": {"expirationTimestamp": expires}}]}


def kubeconfig(stack: str, team: str, namespace: str, server: str, ca_data: Optional[str], user_name: str, user: dict[str, Any]) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    context = f"{stack}-{team}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": stack, "cluster": cluster}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": context, "context": {"cluster": stack, "user": user_name, "namespace": namespace}}],
        "current-context": context,
        "preferences": {},
    }


def text(config: dict[str, Any], header: list[str]) -> str:
    return "".join(f"# {line}\n" for line in header) + yaml.safe_dump(config, sort_keys=False)


def member_objects(member: str, namespace: str) -> list[dict[str, Any]]:
    """The ServiceAccount of one member and its RoleBindings to the team's Roles (as the groups have)."""
    account = f"member-{member}"
    labels = {"app.kubernetes.io/managed-by": "infratech", "infratech.io/member": member}
    subject = [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": namespace, "labels": labels}}
    ]
    for role in (MEMBER_ROLE, READER):
        objects.append({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{account}-{role}", "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": subject,
        })
    return objects


def member_token(cluster, member: str, namespace: str, seconds: int) -> tuple[str, str, str]:
    """Make (server-side apply, idempotent) the member's ServiceAccount and RoleBindings, then a
    token for it: (ServiceAccount name, token, expiry)."""
    objects = member_objects(member, namespace)
    for obj in objects:
        cluster.apply(obj)
    account = objects[0]["metadata"]["name"]
    token, expires = cluster.token(account, namespace, seconds)
    return account, token, expires
