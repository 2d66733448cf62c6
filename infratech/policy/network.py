"""The rules about who reaches the cluster: the API allow-list, the deployer's access, security
groups. Plain functions over plain data, registered in :mod:`.rules`."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Optional

from .model import COMPUTED, Resource, Settings, Stack

# SSH, the Kubernetes API, the RKE2 supervisor (node join) and the kubelet
ADMIN_PORTS = (22, 6443, 9345, 10250)
OUTSCALE_RULE = "outscale:index/securityGroupRule:SecurityGroupRule"


def _known(value: Any) -> bool:
    return value is not None and value != COMPUTED


def api_restricted(stack: Stack) -> list[str]:
    """Each public API endpoint has an allow-list of its own: an allow-list counts for the cluster
    it depends on (its kube_id / cluster_id), not for any cluster of the stack."""
    problems = []
    for kube in stack.of_type("ovh:CloudProject/kube:Kube"):
        lists = [_list(r.props.get("ips")) for r in stack.of_type("ovh:CloudProject/kubeIpRestrictions:KubeIpRestrictions")
                 if kube.urn in r.dependencies]
        problems += _cidr_problems(kube, lists, "ovh.api_allowed_cidrs")
    for cluster in stack.of_type("scaleway:kubernetes/cluster:Cluster"):
        lists = [[rule.get("ip") for rule in _list(r.props.get("aclRules")) if isinstance(rule, dict)]
                 for r in stack.of_type("scaleway:kubernetes/acl:Acl") if cluster.urn in r.dependencies]
        problems += _cidr_problems(cluster, lists, "scaleway.api_allowed_cidrs")
    return problems


def _list(value: Any) -> list:
    """A list property, or [COMPUTED] when the whole list is known only after creation."""
    if isinstance(value, list):
        return value
    return [COMPUTED] if value == COMPUTED else []


def _cidr_problems(cluster: Resource, lists: list[list], key: str) -> list[str]:
    if not lists or not any(lists):
        return [f"{cluster.label()}: the Kubernetes API has a public endpoint and no allow-list of its own; list the networks in {key}"]
    cidrs = [c for cidrs in lists for c in cidrs if isinstance(c, str) and _known(c)]
    problems = [f"{cluster.label()}: the API allow-list contains {cidr}, {_WIDE_WHY}" for cidr in cidrs if _open(cidr)]
    if not problems and _cover_everything(cidrs):
        problems.append(f"{cluster.label()}: the API allow-list's ranges together ({', '.join(cidrs)}) cover the whole Internet")
    return problems


# A range wider than this is no administration network: the Internet in two /1 halves, or any
# public /2../7, would otherwise pass. RFC 1918's widest private range is a /8 (10.0.0.0/8).
WIDEST_PREFIX = {4: 8, 6: 16}
_WIDE_WHY = "wider than a /8 (IPv4) or /16 (IPv6): a share of the whole Internet, not an admin network"


def _net(cidr: str) -> Optional[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _open(cidr: str) -> bool:
    """A range too wide to be an administration network (0.0.0.0/0, ::/0, 0.0.0.0/1, 2000::/3 ...)."""
    net = _net(cidr)
    return net is not None and net.prefixlen < WIDEST_PREFIX[net.version]


def _cover_everything(cidrs: list[str]) -> bool:
    """Whether the ranges together make up every IPv4 or every IPv6 address (256 /8s, say)."""
    nets = [n for n in map(_net, cidrs) if n is not None]
    for version in (4, 6):
        merged = list(ipaddress.collapse_addresses(n for n in nets if n.version == version))
        if any(n.prefixlen == 0 for n in merged):
            return True
    return False


# RFC 5737 and RFC 3849: ranges for examples in documentation; no deployer has such an address
DOCUMENTATION_RANGES = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


def _documentation_only(cidr: str) -> bool:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    return any(net.version == doc.version and net.subnet_of(doc) for doc in DOCUMENTATION_RANGES)


def deployer_reaches_api(stack: Stack) -> list[str]:
    """The machine that runs `pulumi up` installs the platform through the cluster's API: with an
    allow-list that cannot contain it, the cluster comes up and every release after it fails."""
    access = stack.outputs.get("api_access")
    if not isinstance(access, dict) or not any(r.package == "kubernetes" and r.kind != "kubernetes" for r in stack.resources):
        return []
    key = f"{stack.outputs.get('provider')}.deployer_cidrs"
    allowed = [c for c in access.get("allowed_cidrs") or [] if isinstance(c, str)]
    deployer = [c for c in access.get("deployer_cidrs") or [] if isinstance(c, str)]
    if not allowed:
        return []  # no allow-list: api-restricted reports it
    problems = []
    fake = [c for c in (*allowed, *deployer) if _documentation_only(c)]
    if fake:
        problems.append(f"the API allow-list holds documentation ranges (RFC 5737/3849) that no machine has: {', '.join(fake)}")
    if not [c for c in deployer if not _documentation_only(c)]:
        problems.append(
            f"no {key}: once the allow-list applies, the machine running `pulumi up` cannot reach the API to "
            f"install the platform; put its egress address in {key} (docs/configuration.md)"
        )
    return problems


SCALEWAY_GROUPS = ("scaleway:instance/securityGroup:SecurityGroup", "scaleway:instance/securityGroupRules:SecurityGroupRules")


def no_open_admin_ingress(res: Resource, settings: Settings) -> list[str]:
    if res.type == OUTSCALE_RULE:
        return _outscale_open_admin(res)
    if res.type not in SCALEWAY_GROUPS:
        return []
    problems = []
    rules = [r for r in res.props.get("inboundRules") or [] if isinstance(r, dict)]
    for rule in rules:
        if (rule.get("action") or "accept") != "accept":
            continue
        ip_range = _scaleway_source(rule)
        if ip_range is None or not _open(ip_range):
            continue
        exposed = [p for p in ADMIN_PORTS if _covers(rule, p)]
        if exposed:
            problems.append(f"{res.label()}: port {', '.join(map(str, exposed))} open to {ip_range}; allow only the admin networks")
    # Scaleway's Instance API: a security group's inbound default policy is accept unless set
    # (CreateSecurityGroupRequest inbound_default_policy, "default to Accept"); a port no rule drops
    # from everywhere is then open to everyone
    if res.type == SCALEWAY_GROUPS[0] and (res.props.get("inboundDefaultPolicy") or "accept") == "accept":
        dropped = [r for r in rules if r.get("action") == "drop"]
        exposed = [p for p in ADMIN_PORTS
                   if not _cover_everything([_scaleway_source(r) or "" for r in dropped if _covers(r, p)])]
        if exposed:
            problems.append(f"{res.label()}: inboundDefaultPolicy accept leaves port {', '.join(map(str, exposed))} open to "
                            "everyone; set it to drop and accept the admin networks only")
    return problems


def _scaleway_source(rule: dict) -> Optional[str]:
    """A Scaleway inbound rule's source; no ``ip`` nor ``ipRange`` means every address
    (pulumiverse_scaleway SecurityGroupInboundRuleArgs: "rule will apply to all ip")."""
    ip_range = rule.get("ipRange") or rule.get("ip")
    if ip_range is None:
        return "0.0.0.0/0"
    return ip_range if isinstance(ip_range, str) and _known(ip_range) else None


def _covers(rule: dict, port: int) -> bool:
    ports = _ports(rule.get("port"), rule.get("portRange"))
    return ports is None or port in ports


def _ports(port: Any, port_range: Any) -> Optional[range]:
    if isinstance(port, int):
        return range(port, port + 1)
    if isinstance(port_range, str) and re.fullmatch(r"\d+-\d+", port_range):
        a, b = (int(x) for x in port_range.split("-"))
        return range(a, b + 1)
    return None  # every port


def _outscale_open_admin(res: Resource) -> list[str]:
    """An Outscale security-group rule: the flat form (ipRange, fromPortRange, toPortRange) or
    the ``rules`` list (ipRanges per entry). Protocol -1 and no port range mean every port."""
    if res.props.get("flow") != "Inbound":
        return []
    entries = [{"ipRanges": [res.props.get("ipRange")], "fromPortRange": res.props.get("fromPortRange"),
                "toPortRange": res.props.get("toPortRange"), "ipProtocol": res.props.get("ipProtocol")}]
    entries += [r for r in res.props.get("rules") or [] if isinstance(r, dict)]
    problems = []
    for entry in entries:
        opened = [c for c in entry.get("ipRanges") or [] if isinstance(c, str) and _open(c)]
        if not opened:
            continue
        low, high = entry.get("fromPortRange"), entry.get("toPortRange")
        every = entry.get("ipProtocol") in (None, "-1") or not isinstance(low, int)
        ports = None if every else range(low, (high if isinstance(high, int) else low) + 1)
        exposed = [p for p in ADMIN_PORTS if ports is None or p in ports]
        if exposed:
            problems.append(f"{res.label()}: port {', '.join(map(str, exposed))} open to {', '.join(opened)}; allow only the admin networks")
    return problems
