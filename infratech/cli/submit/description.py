"""A team's description read from the cluster, with the user's own kubeconfig: the ConfigMap
``infratech-team`` the platform publishes in the team's namespace (the team's name), holding the
document the stack exports as ``team_descriptions`` (infratech/program/platform/team_description.py).

No Pulumi CLI and no stack state: what a researcher needs is a kubeconfig for the team
(`infratech kubeconfig`, docs/access.md). Two refusals say what to do instead of showing the API
server's answer: the user is not a member of the team (403), or the cluster's platform is older
than this CLI (no such ConfigMap).
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

import yaml

from ...team_description import CONFIGMAP, DATA_KEY
from .cluster import ClusterError, Forbidden
from .resolve import NoDescription, Target, from_description


class Reader(Protocol):
    def get(self, api_version: str, kind: str, name: str, namespace: str) -> Optional[dict]: ...


class NotMember(ClusterError):
    """The user may not read the team's description: not a member of the team, as the cluster sees it."""

    def __init__(self, team: str, refusal: str):
        super().__init__(
            f"you are not a member of team {team!r}: the cluster refused to let you read its description in namespace {team!r} "
            f"({refusal}). Ask the platform team to add you to the team's group in the identity provider "
            f"(by default infratech:{team}; `infratech kubeconfig STACK --team {team}` prints the groups), "
            "or check that your kubeconfig's current context (or --context) is the team's"
        )
        self.team = team


def read(cluster: Reader, team: str) -> dict[str, Any]:
    """The description of ``team`` as the cluster publishes it."""
    try:
        found = cluster.get("v1", "ConfigMap", CONFIGMAP, team)
    except Forbidden as exc:
        raise NotMember(team, str(exc)) from None
    if found is None:
        raise NoDescription(
            f"namespace {team!r} has no ConfigMap {CONFIGMAP}: the platform on this cluster is older than this CLI "
            f"(or {team!r} is not a team of it). Ask the platform team to upgrade the platform (`infratech up STACK`), "
            "or give --stack STACK to read the stack's outputs instead"
        )
    text = (found.get("data") or {}).get(DATA_KEY)
    try:
        document = yaml.safe_load(text) if text else None
    except yaml.YAMLError as exc:
        raise NoDescription(f"ConfigMap {team}/{CONFIGMAP} holds no readable {DATA_KEY}: {exc}") from None
    if not isinstance(document, dict):
        raise NoDescription(f"ConfigMap {team}/{CONFIGMAP} holds no {DATA_KEY} mapping: the platform on this cluster is older than this CLI")
    return document


def target(cluster: Reader, team: str, source: str = "job file") -> Target:
    """Where a job of ``team`` goes, from the cluster's description (no kube_context: the user's own)."""
    return from_description(read(cluster, team), team, source)
