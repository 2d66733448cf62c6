"""Rules on self-built clusters: Outscale security-group rules, and SecNumCloud per region."""

from __future__ import annotations

import pytest

from infratech.policy import BY_ID, Resource, Settings, Stack

RULE = "outscale:index/securityGroupRule:SecurityGroupRule"


def rule(**props) -> Resource:
    return Resource(RULE, "sg-rule", f"urn:pulumi:s::p::{RULE}::sg-rule", {"flow": "Inbound", **props})


def entry(low, high, *cidrs, protocol="tcp") -> dict:
    return {"ipProtocol": protocol, "fromPortRange": low, "toPortRange": high, "ipRanges": list(cidrs)}


def admin(res: Resource) -> list[str]:
    return BY_ID["no-open-admin-ingress"].check(res, Settings())


@pytest.mark.parametrize("why, res", [
    ("SSH to the world, rules form", rule(rules=[entry(22, 22, "0.0.0.0/0")])),
    ("API to the world", rule(rules=[entry(6443, 6443, "10.0.0.0/8", "0.0.0.0/0")])),
    ("RKE2 supervisor to the world", rule(rules=[entry(9345, 9345, "0.0.0.0/0")])),
    ("kubelet inside a wide range", rule(rules=[entry(10000, 11000, "0.0.0.0/0")])),
    ("every protocol and port", rule(rules=[{"ipProtocol": "-1", "ipRanges": ["0.0.0.0/0"]}])),
    ("SSH to the world, flat form", rule(ipRange="0.0.0.0/0", fromPortRange=22, toPortRange=22, ipProtocol="tcp")),
])
def test_outscale_rules_opening_admin_ports_to_the_world_are_violations(why, res):
    assert admin(res), why


@pytest.mark.parametrize("why, res", [
    ("SSH from an admin network", rule(rules=[entry(22, 22, "203.0.113.0/24")])),
    ("HTTPS to the world", rule(rules=[entry(443, 443, "0.0.0.0/0")])),
    ("outbound to the world", rule(flow="Outbound", rules=[entry(0, 65535, "0.0.0.0/0", protocol="-1")])),
    ("SSH from the bastion's group", rule(rules=[{"ipProtocol": "tcp", "fromPortRange": 22, "toPortRange": 22,
                                                  "securityGroupsMembers": [{"securityGroupId": "sg-1"}]}])),
])
def test_outscale_rules_that_keep_admin_ports_closed_pass(why, res):
    assert admin(res) == [], why


def snc(outputs: dict) -> list[str]:
    pools = [{"name": "a100", "flavor": "tinav6.c32r128p1"}]
    return BY_ID["secnumcloud-only"].check(Stack([], {"pools": pools, **outputs}, Settings(secnumcloud_only=True)))


def test_secnumcloud_only_passes_in_cloudgouv_and_fails_elsewhere_naming_the_region():
    assert snc({"provider": "outscale", "region": "cloudgouv-eu-west-1"}) == []
    failed = snc({"provider": "outscale", "region": "eu-west-2"})
    assert failed and "eu-west-2" in failed[0] and "unverified" in failed[1]
    assert snc({"provider": "baremetal", "region": "dc1"}), "bare metal cannot show a qualification"
    assert snc({"provider": "ovh", "region": "GRA11"}), "managed offers stay not qualified"
