"""``infratech kubeconfig STACK --team TEAM [--out FILE]``: a kubeconfig for a team's members.

    infratech kubeconfig ovh-gra11 --team pretraining --deployed --out pretraining.kubeconfig
    infratech kubeconfig existing-onprem --team pretraining --deployed --token-for alice --duration 8h

Endpoint and CA from the stack's outputs (the offline plan by default, where they are not known yet:
``--server`` and ``--certificate-authority`` then; ``--deployed`` reads the deployed stack's); an
OIDC login where the stack configures an issuer, else (or with ``--token-for``) a ServiceAccount
token with an expiry, made with your own kubeconfig (``--context``). docs/access.md.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

from ...exits import EXIT_BAD_INPUT, EXIT_TOOL
from .. import access
from ..deploy import DeployError, PulumiCliMissing
from ..errors import BadFlag, os_error
from ..submit.cluster import ClusterError, Forbidden, KubeCluster
from ..submit.resolve import stack_outputs


def add(sub) -> None:
    k = sub.add_parser(
        "kubeconfig",
        help="a kubeconfig for a team's members: OIDC login, or an expiring ServiceAccount token; no admin secret",
        description="Writes the API endpoint and CA of STACK with a login for members of TEAM: the kubelogin plugin "
        "(`kubectl oidc-login`) against the issuer the stack configures, or with --token-for a ServiceAccount token "
        "with an expiry. docs/access.md says what each provider needs.",
    )
    k.add_argument("stack")
    k.add_argument("--team", required=True, help="the team whose namespace and groups the kubeconfig is for")
    k.add_argument("--out", type=Path, help="write it to this file, readable by you only (default: standard output)")
    k.add_argument("--deployed", action="store_true", help="read the deployed stack's outputs (Pulumi CLI) instead of the offline plan")
    k.add_argument("--server", help="the API server's URL, where the outputs do not know it (the offline plan)")
    k.add_argument("--certificate-authority", type=Path, help="PEM file of the API server's CA (with --server)")
    k.add_argument("--token-for", metavar="MEMBER", help="a ServiceAccount token for this member instead of an OIDC login")
    k.add_argument("--duration", default="8h", help="how long the token is valid: 30m, 8h, 2d (default 8h; 10m to 7d)")
    k.add_argument("--context", help="your kubeconfig context that may create the member's ServiceAccount and token")
    k.set_defaults(run=run)


def _ca(path) -> str | None:
    if path is None:
        return None
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise BadFlag(f"--certificate-authority: {os_error(exc)}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise BadFlag(f"--certificate-authority: {path} holds no PEM certificate")
    return base64.b64encode(pem).decode()


def build(args, project, cluster_factory=KubeCluster) -> str:
    """The kubeconfig's text; BadFlag for bad input, the cluster's errors as they come."""
    outputs = stack_outputs(project, args.stack, "stack" if args.deployed else "plan")
    found = access.team_access(outputs, args.stack, args.team)
    server, ca_data = access.endpoint(found, args.stack, args.server, _ca(args.certificate_authority))
    namespace = ((outputs.get("queues") or {}).get(args.team) or {}).get("namespace") or args.team
    groups = (found.get("team_groups") or {}).get(args.team) or []
    oidc = found.get("oidc")
    header = [f"team {args.team} of stack {args.stack}: namespace {namespace}; written by `infratech kubeconfig` (docs/access.md)"]
    if args.token_for is None:
        if not oidc:
            raise BadFlag(
                f"--token-for: stack {args.stack!r} configures no OIDC issuer (<provider>.oidc, docs/access.md): give --token-for MEMBER "
                f"for a ServiceAccount token with an expiry, made with your own kubeconfig (it must be allowed to create "
                f"ServiceAccounts, RoleBindings and tokens in namespace {namespace})"
            )
        prefix = oidc.get("groups_prefix") or ""
        header.append(f"log in: `kubectl oidc-login` against {oidc['issuer_url']}; members are in group(s) "
                      f"{', '.join(prefix + g for g in groups)} as the API server sees them (RoleBindings team-member, infratech-team-reader)")
        user_name, user = f"{args.stack}-{args.team}-oidc", access.oidc_user(oidc)
    else:
        member = access.member_name(args.token_for)
        seconds = access.duration_seconds(args.duration)
        account, token, expires = access.member_token(cluster_factory(args.context), member, namespace, seconds)
        header.append(f"ServiceAccount {namespace}/{account}; the token expires at {expires}: ask for a new one then")
        user_name, user = f"{args.stack}-{args.team}-{member}", access.token_user(token, expires)
    return access.text(access.kubeconfig(args.stack, args.team, namespace, server, ca_data, user_name, user), header)


def run(args, project) -> int:
    try:
        text = build(args, project)
    except access.NoAccessOutput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TOOL
    except Forbidden as exc:
        print(f"error: you may not make a member's token in the team's namespace ({exc}): ask a platform engineer", file=sys.stderr)
        return EXIT_TOOL
    except (ClusterError, PulumiCliMissing, DeployError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TOOL
    for line in text.splitlines():
        if line.startswith("# "):
            print(line[2:], file=sys.stderr)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a token is a credential
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        print(f"error: --out {args.out}: {os_error(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(args.out)
    return 0
