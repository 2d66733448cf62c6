"""The OVHcloud component declares what MKS, the vRack and S3 need, as pulumi_ovh expects it."""

from __future__ import annotations

import json

import pytest
from pulumi.runtime import mocks

from infratech import catalog
from infratech.cli.plan import record
from infratech.program.providers import ovh as ovh_provider

from s3_policy_eval import allows, decide

POOL = "ovh:CloudProject/kubeNodePool:KubeNodePool"
BUCKET = "ovh:index/cloudStorageObjectBucket:CloudStorageObjectBucket"


def pools(rec):
    return {r.inputs["name"]: r.inputs for r in rec.by_type(POOL)}


def test_cluster_in_gpu_region_on_private_network(default_plan):
    kube = default_plan.one("ovh:CloudProject/kube:Kube").inputs
    assert kube["region"] == "GRA11"
    # GRA11 is a single-zone region: MKS sells only the free plan there (catalog mks_plans)
    assert kube["plan"] == "free" and kube["updatePolicy"] == "MINIMAL_DOWNTIME"
    assert kube["privateNetworkId"] == "(computed)" and kube["nodesSubnetId"] == "(computed)"
    assert kube["privateNetworkConfiguration"] == {
        "defaultVrackGateway": "10.42.0.1",
        "privateNetworkRoutingAsDefault": True,
    }
    net = default_plan.one("ovh:CloudProject/networkPrivate:NetworkPrivate").inputs
    assert net["regions"] == ["GRA11"]
    subnet = default_plan.one("ovh:CloudProject/networkPrivateSubnetV2:NetworkPrivateSubnetV2").inputs
    assert subnet["cidr"] == "10.42.0.0/16" and subnet["gatewayIp"] == "10.42.0.1"
    assert subnet["allocationPools"] == [{"end": "10.42.255.253", "start": "10.42.0.2"}]
    gateway = default_plan.one("ovh:CloudProject/gateway:Gateway").inputs
    assert gateway["model"] == "s" and gateway["region"] == "GRA11"


def test_api_server_restricted_to_listed_cidrs(default_plan):
    restriction = default_plan.one("ovh:CloudProject/kubeIpRestrictions:KubeIpRestrictions")
    # the stack's networks, then the gateway's external address (known after creation): node
    # egress goes through the gateway, so nodes reach the public API endpoint from it
    assert restriction.inputs["ips"] == ["203.0.113.0/24", "(computed)"]


def test_gpu_pools_are_labelled_and_tainted(default_plan):
    by_name = pools(default_plan)
    assert set(by_name) == {"system", "h100", "l40s"}
    h100 = by_name["h100"]
    assert h100["flavorName"] == "h100-380"
    assert (h100["minNodes"], h100["desiredNodes"], h100["maxNodes"], h100["autoscale"]) == (0, 2, 4, True)
    labels = h100["template"]["metadata"]["labels"]
    assert labels["infratech.io/gpu-model"] == "h100-80gb"
    assert labels["infratech.io/gpu-count"] == "1"
    assert labels["infratech.io/role"] == "training"
    assert labels["owner"] == "platform" and labels["cost-centre"] == "ml-research"
    assert h100["template"]["spec"]["taints"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "present"}
    ]
    assert by_name["l40s"]["template"]["metadata"]["labels"]["infratech.io/gpu-model"] == "l40s"


def test_system_pool_is_untainted_and_spread(default_plan):
    system = pools(default_plan)["system"]
    assert system["template"]["spec"]["taints"] == []
    assert system["antiAffinity"] is True
    assert "infratech.io/gpu-model" not in system["template"]["metadata"]["labels"]


def test_every_gpu_flavour_is_sold_in_the_region(default_plan):
    cat = catalog.load()
    for pool in pools(default_plan).values():
        offer = cat.offer("ovh", pool["flavorName"])
        assert offer is not None and offer.sold_in("GRA11")
        assert "_" not in pool["name"], "MKS refuses '_' in pool names"


def test_buckets_versioned_encrypted_protected_in_upper_case_region(default_plan):
    buckets = {r.inputs["name"]: r for r in default_plan.by_type(BUCKET)}
    assert set(buckets) == {"llm-gra11-datasets", "llm-gra11-checkpoints"}
    for res in buckets.values():
        assert res.inputs["region"] == "GRA"
        assert res.inputs["versioning"] == {"status": "ENABLED"}
        assert res.inputs["encryption"] == {"algorithm": "AES256"}
        assert res.inputs["tags"]["owner"] == "platform"
        assert res.protect, "a destroy must not lose datasets or checkpoints"


def _policies(rec) -> dict[str, str]:
    """user description's role -> its S3 policy document, joined through the user's id"""
    users = {r.urn: r for r in rec.by_type("ovh:CloudProject/user:User")}
    return {
        users[next(d for d in p.dependencies if d in users)].name: p.inputs["policy"]
        for p in rec.by_type("ovh:CloudProject/s3Policy:S3Policy")
    }


def test_s3_user_reaches_only_the_stack_buckets(default_plan):
    for user in default_plan.by_type("ovh:CloudProject/user:User"):
        assert user.inputs["roleNames"] == ["objectstore_operator"]
    policy = json.loads(_policies(default_plan)["llm-gra11-s3-user"])
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Resource"]) == sorted(
        f"arn:aws:s3:::llm-gra11-{b}{suffix}" for b in ("datasets", "checkpoints") for suffix in ("", "/*")
    )
    assert "s3:*" not in statement["Action"]


def test_one_identity_per_team_plus_readonly_and_promoter(default_plan):
    assert sorted(_policies(default_plan)) == sorted(
        f"llm-gra11-s3-user{s}" for s in ("", "-team-pretraining", "-team-applied", "-readonly", "-promoter")
    )
    assert len(default_plan.by_type("ovh:CloudProject/s3Credential:S3Credential")) == 5


def test_a_team_key_reaches_its_own_prefix_and_not_another_teams(default_plan):
    policies = _policies(default_plan)
    a, b = policies["llm-gra11-s3-user-team-pretraining"], policies["llm-gra11-s3-user-team-applied"]
    ckpt, data = "llm-gra11-checkpoints", "llm-gra11-datasets"
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert allows(a, action, ckpt, "pretraining/run-1/model.safetensors")
        assert not allows(a, action, ckpt, "applied/run-1/model.safetensors"), action
        assert not allows(b, action, ckpt, "pretraining/run-1/model.safetensors"), action
        assert not allows(a, action, ckpt, "pretraining-evil/x"), "the prefix ends with its slash"
    assert allows(a, "s3:GetObject", data, "packed/shared-corpus/shard-0.bin"), "the shared corpus"
    assert not allows(a, "s3:PutObject", data, "packed/shared-corpus/shard-0.bin")
    assert not allows(a, "s3:PutObject", data, "applied/mine.jsonl")
    assert allows(a, "s3:PutObject", data, "pretraining/mine.jsonl")
    assert not allows(a, "s3:PutObject", "another-stacks-bucket", "pretraining/x")


def test_teams_cannot_forge_a_promotion_the_promoter_can(default_plan):
    policies = _policies(default_plan)
    team, promoter = policies["llm-gra11-s3-user-team-pretraining"], policies["llm-gra11-s3-user-promoter"]
    ckpt = "llm-gra11-checkpoints"
    for key in ("pretraining/run/export/promotion.json", "pretraining/run/promotions/registry.json", "promotions/lucie-7b/registry.json"):
        assert decide(team, "s3:PutObject", f"arn:aws:s3:::{ckpt}/{key}") != "Allow", key
        assert not allows(team, "s3:DeleteObject", ckpt, key), key
        assert allows(promoter, "s3:PutObject", ckpt, key), key
    assert decide(team, "s3:PutObject", f"arn:aws:s3:::{ckpt}/pretraining/run/export/promotion.json") == "ExplicitDeny"
    assert allows(team, "s3:GetObject", ckpt, "pretraining/run/export/promotion.json"), "the team reads its verdicts"


def test_the_readonly_key_writes_nothing(default_plan):
    readonly = _policies(default_plan)["llm-gra11-s3-user-readonly"]
    for bucket in ("llm-gra11-checkpoints", "llm-gra11-datasets"):
        assert allows(readonly, "s3:GetObject", bucket, "pretraining/run/export/model.safetensors")
        assert allows(readonly, "s3:ListBucket", bucket)
        for action in ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"):
            assert not allows(readonly, action, bucket, "pretraining/x"), action


def test_handle_tells_platform_to_install_the_driver(default_plan):
    assert default_plan.outputs["driver_preinstalled"] is False
    assert default_plan.outputs["object_store"]["endpoint"] == "https://s3.gra.io.cloud.ovh.net"
    pools_out = {p["name"]: p for p in default_plan.outputs["pools"]}
    assert pools_out["h100"]["gpu_model"] == "h100-80gb" and pools_out["h100"]["gpus_per_node"] == 1


@pytest.mark.parametrize(
    "cidr,first,last",
    [("10.42.0.0/16", "10.42.0.2", "10.42.255.253"), ("192.168.8.0/24", "192.168.8.2", "192.168.8.253")],
)
def test_dhcp_range_leaves_gateway_free(cidr, first, last):
    import ipaddress

    assert ovh_provider._dhcp_range(ipaddress.IPv4Network(cidr)) == (first, last)


def test_stack_without_gateway_or_allowlist(variant):
    rec = variant("ovh-gra11-l4", lambda c: c["infratech:ovh"].pop("api_allowed_cidrs"))
    assert rec.by_type("ovh:CloudProject/gateway:Gateway") == []
    assert rec.by_type("ovh:CloudProject/kubeIpRestrictions:KubeIpRestrictions") == []
    kube = rec.one("ovh:CloudProject/kube:Kube").inputs
    assert kube["privateNetworkConfiguration"] == {"defaultVrackGateway": "", "privateNetworkRoutingAsDefault": False}
    assert kube["plan"] == "free"
    subnet = rec.one("ovh:CloudProject/networkPrivateSubnetV2:NetworkPrivateSubnetV2").inputs
    assert subnet["enableGatewayIp"] is False and "gatewayIp" not in subnet
    assert [b.inputs["name"] for b in rec.by_type(BUCKET)] == ["llm-l4-checkpoints"]


# -- what a real `pulumi up` needs of the values OVHcloud returns ------------------------------------
class OvhApiStandIn(mocks.Mocks):
    """Test double of the OVHcloud API behind pulumi_ovh (no cloud here): answers every create
    with an id of its own, a private network with its vRack id (``pn-…``) and a different
    OpenStack id per region, and a gateway with an external address, as the API does."""

    def new_resource(self, args: mocks.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "ovh:CloudProject/networkPrivate:NetworkPrivate":
            state["regionsAttributes"] = [{"region": r, "openstackid": f"os-{r.lower()}-net", "status": "ACTIVE"}
                                          for r in args.inputs.get("regions", [])]
            return "pn-1234567_42", state
        if args.typ == "ovh:CloudProject/gateway:Gateway":
            state["externalInformations"] = [{"networkId": "ext-net", "ips": [{"ip": "51.68.10.20", "subnetId": "ext"}]}]
        return f"{args.name}-id", state

    def call(self, args: mocks.MockCallArgs):
        return {}, None


@pytest.fixture(scope="module")
def answered(project):
    return record(project, "ovh-gra11", behaviour=OvhApiStandIn())


def test_subnet_gateway_and_cluster_take_the_networks_openstack_id_not_the_vrack_id(answered):
    subnet = answered.one("ovh:CloudProject/networkPrivateSubnetV2:NetworkPrivateSubnetV2").inputs
    gateway = answered.one("ovh:CloudProject/gateway:Gateway").inputs
    kube = answered.one("ovh:CloudProject/kube:Kube").inputs
    assert subnet["networkId"] == gateway["networkId"] == kube["privateNetworkId"] == "os-gra11-net"


def test_allow_list_holds_the_gateways_address_when_nodes_egress_through_it(answered):
    ips = answered.one("ovh:CloudProject/kubeIpRestrictions:KubeIpRestrictions").inputs["ips"]
    assert ips == ["203.0.113.0/24", "51.68.10.20/32"]


def test_deployer_is_added_to_the_allow_list_once(variant):
    rec = variant("ovh-gra11", lambda c: c["infratech:ovh"].update(deployer_cidrs=["198.18.7.1/32", "203.0.113.0/24"]))
    ips = rec.one("ovh:CloudProject/kubeIpRestrictions:KubeIpRestrictions").inputs["ips"]
    assert ips[:2] == ["203.0.113.0/24", "198.18.7.1/32"] and len(ips) == 3
    assert rec.outputs["api_access"] == {"allowed_cidrs": ["203.0.113.0/24"], "deployer_cidrs": ["198.18.7.1/32", "203.0.113.0/24"]}


def test_platform_waits_for_the_system_pool_not_for_gpu_pools(default_plan):
    provider = default_plan.one("pulumi:providers:kubernetes")
    pools = {r.inputs["name"]: r.urn for r in default_plan.by_type(POOL)}
    assert pools["system"] in provider.dependencies
    assert pools["h100"] not in provider.dependencies and pools["l40s"] not in provider.dependencies
    # every platform object reaches the cluster through that provider, so it waits too
    releases = default_plan.by_type("kubernetes:helm.sh/v3:Release")
    assert releases and all(r.provider and r.provider.startswith(provider.urn) for r in releases)


def test_autoscaled_pools_leave_desired_nodes_to_the_autoscaler(variant):
    rec = variant("ovh-gra11", lambda c: c["infratech:pools"][2].update(autoscale=False, min_nodes=1, desired_nodes=1, max_nodes=1))
    by_name = {r.inputs["name"]: r for r in rec.by_type(POOL)}
    assert by_name["h100"].ignore_changes == ["desiredNodes"] and by_name["system"].ignore_changes == ["desiredNodes"]
    assert by_name["l40s"].ignore_changes == [], "a fixed-size pool follows the stack file"


def test_gpu_pools_wait_longer_than_the_providers_default_hour(default_plan):
    by_name = {r.inputs["name"]: r for r in default_plan.by_type(POOL)}
    assert by_name["h100"].custom_timeouts == {"create": "3h", "update": "3h"}
    assert by_name["system"].custom_timeouts == {}


def test_s3_clients_sign_with_the_lower_case_region(default_plan):
    store = default_plan.outputs["object_store"]
    assert store["region"] == "gra" and store["endpoint"] == "https://s3.gra.io.cloud.ovh.net"
