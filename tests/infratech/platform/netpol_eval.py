"""Where a pod may connect, decided on the NetworkPolicies in a plan.

``reachable`` applies the Kubernetes NetworkPolicy semantics to egress towards an address
outside the cluster (kubernetes.io/docs/concepts/services-networking/network-policies: policies
are additive; a pod selected by an Egress policy may send only what some rule of some such
policy allows; an ipBlock matches its cidr minus its except ranges; a rule without ports allows
every port, a rule without peers every destination)."""

from __future__ import annotations

import ipaddress


def egress_rules(rec, namespace: str) -> list[dict]:
    rules = []
    for r in rec.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy"):
        if r.inputs["metadata"].get("namespace") == namespace and "Egress" in r.inputs["spec"].get("policyTypes", []):
            assert r.inputs["spec"]["podSelector"] == {}, "every pod of the namespace"
            rules += r.inputs["spec"].get("egress") or []
    return rules


def _peer_matches(peer: dict, address) -> bool:
    block = peer.get("ipBlock")
    if block is None:
        return False  # pod and namespace selectors name pods inside the cluster, not outside addresses
    inside = address in ipaddress.ip_network(block["cidr"])
    return inside and not any(address in ipaddress.ip_network(e) for e in block.get("except") or [])


def reachable(rec, namespace: str, address: str, port: int, protocol: str = "TCP") -> bool:
    addr = ipaddress.ip_address(address)
    for rule in egress_rules(rec, namespace):
        ports = rule.get("ports")
        if ports and not any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports):
            continue
        peers = rule.get("to")
        if not peers or any(_peer_matches(p, addr) for p in peers):
            return True
    return False
