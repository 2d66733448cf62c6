"""3DS Outscale: the program under the mock runtime, every argument checked by pulumi_outscale's own
SDK classes (a wrong argument name raises TypeError before anything is recorded)."""

from __future__ import annotations

import ipaddress
import shutil

import pytest
import yaml
from pulumi.runtime import mocks

from infratech import policy
from infratech.cli import EXIT_BAD_INPUT, EXIT_POLICY, main
from infratech.cli.plan import policy_verdicts, record
from infratech.cli.plan.runtime import COMPUTED, SECRET
from infratech.config import StackConfigError
from infratech.policy.model import Settings

GOUV, H100 = "outscale-cloudgouv-a100", "outscale-eu-west-2-h100"
VM, FGPU, LINK = "outscale:index/vm:Vm", "outscale:index/flexibleGpu:FlexibleGpu", "outscale:index/flexibleGpuLink:FlexibleGpuLink"
RULE = "outscale:index/securityGroupRule:SecurityGroupRule"


class OutscaleApiStandIn(mocks.Mocks):
    """Test double of the Outscale API behind pulumi_outscale (no cloud here): every create answers
    with an id of its own (``<name>-id``) and a VM with a private address from its subnet, so the
    test can follow which subnet, group and VM each resource names."""

    def __init__(self):
        self.created: list[str] = []

    def new_resource(self, args: mocks.MockResourceArgs):
        self.created.append(args.typ)
        state = dict(args.inputs)
        if args.typ == VM:
            state["privateIp"] = f"10.42.0.{len(self.created) % 250 + 2}"
        if args.typ == "outscale:index/publicIp:PublicIp":
            state["publicIp"] = "198.18.0.10"
            state["publicIpId"] = f"{args.name}-id"
        return f"{args.name}-id", state

    def call(self, args: mocks.MockCallArgs):
        return {}, None


@pytest.fixture(scope="module")
def gouv(project):
    return record(project, GOUV)


@pytest.fixture(scope="module")
def answered(project):
    return record(project, GOUV, behaviour=OutscaleApiStandIn())


def test_one_server_and_two_training_vms_with_two_a100_80gb_each_in_the_secnumcloud_region(gouv):
    vms = {r.name: r.inputs for r in gouv.by_type(VM)}
    assert set(vms) == {"llm-gouv-bastion", "llm-gouv-system-1", "llm-gouv-a100-1", "llm-gouv-a100-2"}
    fgpus = gouv.by_type(FGPU)
    assert len(fgpus) == 4
    assert {(f.inputs["modelName"], f.inputs["generation"], f.inputs["subregionName"], f.inputs["deleteOnVmDeletion"])
            for f in fgpus} == {("nvidia-a100-80", "v6", "cloudgouv-eu-west-1a", True)}
    for name in ("llm-gouv-a100-1", "llm-gouv-a100-2"):
        assert vms[name]["vmType"] == "tinav6.c32r128p1" and vms[name]["performance"] == "highest"
    assert vms["llm-gouv-system-1"]["performance"] == "high"


def test_one_fgpu_link_per_vm_carries_all_its_fgpus(answered):
    links = answered.by_type(LINK)
    assert sorted(link.inputs["vmId"] for link in links) == ["llm-gouv-a100-1-id", "llm-gouv-a100-2-id"]
    for link in links:
        vm = link.inputs["vmId"][: -len("-id")]
        assert link.inputs["flexibleGpuIds"] == [f"{vm}-fgpu-0-id", f"{vm}-fgpu-1-id"]


def test_nodes_have_no_public_ip_and_route_through_the_nat(answered):
    vms = {r.name: r.inputs for r in answered.by_type(VM)}
    links = answered.by_type("outscale:index/publicIpLink:PublicIpLink")
    assert [link.inputs["vmId"] for link in links] == ["llm-gouv-bastion-id"], "only the bastion gets a public IP"
    for name, vm in vms.items():
        expected = "llm-gouv-public-id" if name == "llm-gouv-bastion" else "llm-gouv-nodes-id"
        assert vm["subnetId"] == expected, name
    subnets = {r.name: r.inputs for r in answered.by_type("outscale:index/subnet:Subnet")}
    assert all(s["mapPublicIpOnLaunch"] is False for s in subnets.values())
    routes = {r.name: r.inputs for r in answered.by_type("outscale:index/route:Route")}
    assert routes["llm-gouv-nodes-default"]["natServiceId"] == "llm-gouv-nat-id"
    assert "gatewayId" not in routes["llm-gouv-nodes-default"]
    assert routes["llm-gouv-public-default"]["gatewayId"] == "llm-gouv-internet-id"
    table_links = {r.inputs["subnetId"]: r.inputs["routeTableId"] for r in answered.by_type("outscale:index/routeTableLink:RouteTableLink")}
    assert table_links == {"llm-gouv-nodes-id": "llm-gouv-nodes-routes-id", "llm-gouv-public-id": "llm-gouv-public-routes-id"}
    assert answered.one("outscale:index/natService:NatService").inputs["subnetId"] == "llm-gouv-public-id"


def _open_to(rule: dict) -> list[tuple[str, int, int]]:
    """(cidr, from, to) of every range a rule entry opens."""
    return [(c, e["fromPortRange"], e["toPortRange"]) for e in rule.get("rules", []) for c in e.get("ipRanges") or []]


def test_ssh_only_from_the_bastion_and_cluster_ports_inside_the_net(answered):
    rules = {r.name: r.inputs for r in answered.by_type(RULE)}
    inside = ipaddress.ip_network("10.42.0.0/16")
    ssh = rules["llm-gouv-nodes-ssh"]["rules"]
    assert ssh == [{"fromPortRange": 22, "ipProtocol": "tcp", "toPortRange": 22,
                    "securityGroupsMembers": [{"securityGroupId": "llm-gouv-bastion-id"}]}]
    for cidr, low, high in _open_to(rules["llm-gouv-nodes-inside"]):
        assert ipaddress.ip_network(cidr) == inside, (cidr, low, high)
    opened = {(low, high) for _, low, high in _open_to(rules["llm-gouv-nodes-inside"])}
    assert {(6443, 6443), (9345, 9345), (10250, 10250), (8472, 8472)} <= opened
    assert _open_to(rules["llm-gouv-api-6443"]) == [("203.0.113.0/24", 6443, 6443)]
    assert _open_to(rules["llm-gouv-bastion-ssh"]) == [("203.0.113.0/24", 22, 22)]
    for name, rule in rules.items():
        for cidr, low, high in _open_to(rule):
            assert ipaddress.ip_network(cidr).prefixlen > 0, f"{name} opens {low}-{high} to {cidr}"
        assert rule["flow"] == "Inbound"


def test_keypair_is_the_stacks_public_key_base64_encoded(gouv):
    import base64

    key = gouv.one("outscale:index/keypair:Keypair").inputs
    decoded = base64.b64decode(key["publicKey"]).decode()
    assert decoded.startswith("ssh-ed25519 ") and key["keypairName"] == "llm-gouv"
    assert {vm.inputs["keypairName"] for vm in gouv.by_type(VM)} == {"llm-gouv"}, "every VM takes the stack's keypair"


def test_join_token_and_kubeconfig_and_bucket_keys_are_secrets_and_no_platform_before_bootstrap(gouv):
    out = gouv.outputs
    assert out["join_token"] == SECRET
    assert out["kubeconfig"] is None, "the bootstrap writes the kubeconfig; until then there is none"
    assert not [r for r in gouv.resources if r.package == "kubernetes"], "no platform object on an unbootstrapped cluster"
    store = out["object_store"]
    assert store["endpoint"] == "https://oos.cloudgouv-eu-west-1.outscale.com"
    assert store["buckets"] == {"datasets": "llm-gouv-datasets", "checkpoints": "llm-gouv-checkpoints"}
    assert store["access_key_id"] == SECRET and store["secret_access_key"] == SECRET
    token = gouv.one("random:index/randomPassword:RandomPassword")
    assert token.inputs["length"] == 48 and token.inputs["special"] is False


def test_inventory_lists_planned_hosts_by_pool_and_rke2_role(gouv, answered):
    hosts = gouv.outputs["inventory"]["hosts"]
    assert [(h["name"], h["pool"], h["rke2_role"]) for h in hosts] == [
        ("llm-gouv-system-1", "system", "server"), ("llm-gouv-a100-1", "a100", "agent"), ("llm-gouv-a100-2", "a100", "agent")]
    assert all(h["address"] == COMPUTED for h in hosts), "offline: addresses are known only after up"
    real = answered.outputs["inventory"]
    assert all(ipaddress.ip_address(h["address"]).is_private for h in real["hosts"])
    assert real["server_url"] == f"https://{real['hosts'][0]['address']}:9345"
    assert all(h["jump_host"] == "outscale@198.18.0.10" for h in real["hosts"])


def test_every_policy_passes_and_secnumcloud_only_passes_in_cloudgouv(project, gouv):
    verdicts = policy_verdicts(project, gouv)
    assert [v.rule.id for v in verdicts if v.status == "FAIL"] == []
    assert next(v for v in verdicts if v.rule.id == "secnumcloud-only").status == "pass"


def test_secnumcloud_only_fails_in_eu_west_2_naming_the_region(project):
    rec = record(project, H100)
    assert {f.inputs["modelName"] for f in rec.by_type(FGPU)} == {"nvidia-h100"}
    stack = policy.Stack(policy.resources_from_recording(rec.resources), rec.outputs, Settings(secnumcloud_only=True))
    verdict = next(v for v in policy.evaluate(stack) if v.rule.id == "secnumcloud-only")
    assert verdict.status == "FAIL" and "eu-west-2" in verdict.violations[0]
    assert "unverified" in verdict.violations[1]


def _project_copy(project, tmp_path, stack: str, data: dict):
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    shutil.copy(project.root / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy(project.main, root / "__main__.py")
    (root / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return root


def test_a_rule_open_to_the_world_makes_the_plan_exit_4(project, tmp_path, monkeypatch):
    """The config refuses /0 allow-lists; the rule must still catch a program that opens them.
    Test double: the config's CIDR check replaced by one that lets 0.0.0.0/0 through."""
    import infratech.config.selfbuilt as selfbuilt

    monkeypatch.setattr(selfbuilt, "_api_cidrs", lambda v: v)
    data = yaml.safe_load(project.stack_file(H100).read_text(encoding="utf-8"))
    data["config"]["infratech:outscale"]["admin_cidrs"] = ["0.0.0.0/0"]
    root = _project_copy(project, tmp_path, H100, data)
    out = tmp_path / "plan"
    assert main(["--project-dir", str(root), "plan", H100, "--quiet", "--out", str(out)]) == EXIT_POLICY
    report = (out / f"{H100}.md").read_text(encoding="utf-8")
    assert "no-open-admin-ingress" in report and "port 22 open to 0.0.0.0/0" in report


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["infratech:pools"][1].update(gpu_model="nvidia-l40"), "pools[1].gpu_model"),
    (lambda c: c["infratech:pools"][1].update(gpus_per_node=3), "pools[1].gpus_per_node"),
    (lambda c: c["infratech:pools"][0].update(nodes=2), "pools[0]"),
])
def test_bad_input_exits_2_with_nothing_declared(project, tmp_path, capsys, edit, key):
    data = yaml.safe_load(project.stack_file(GOUV).read_text(encoding="utf-8"))
    edit(data["config"])
    root = _project_copy(project, tmp_path, GOUV, data)
    assert main(["--project-dir", str(root), "plan", GOUV, "--quiet", "--out", str(tmp_path / "plan")]) == EXIT_BAD_INPUT
    assert f"{key}: " in capsys.readouterr().err
    assert not (tmp_path / "plan").exists()
    from infratech.cli.stacks import find_project

    standin = OutscaleApiStandIn()
    with pytest.raises(StackConfigError):
        record(find_project(root), GOUV, behaviour=standin)
    assert standin.created == [], "nothing is declared for a refused stack"


def test_nat_waits_for_the_public_subnets_route_to_the_internet(gouv):
    nat = gouv.one("outscale:index/natService:NatService")
    urns = {r.urn: r.name for r in gouv.resources}
    assert {"llm-gouv-internet-link", "llm-gouv-public-routes-link"} <= {urns[d] for d in nat.dependencies if d in urns}
    route = next(r for r in gouv.by_type("outscale:index/route:Route") if r.name == "llm-gouv-public-default")
    assert "llm-gouv-internet-link" in {urns[d] for d in route.dependencies if d in urns}


def test_inventory_deployed_gives_real_addresses_through_the_bastion(answered, monkeypatch, capsys):
    """`infratech inventory STACK --deployed`, with the Pulumi CLI's outputs replaced by those of
    the plan answered by the Outscale API stand-in (secrets masked, as deploy.run returns them)."""
    from infratech.cli.commands import inventory as command

    monkeypatch.setattr(command.deploy, "run", lambda project, stack, action: dict(answered.outputs))
    assert main(["inventory", GOUV, "--deployed"]) == 0
    inv = yaml.safe_load(capsys.readouterr().out)["all"]
    agents = inv["children"]["pool_a100"]["hosts"]
    assert list(agents) == ["llm-gouv-a100-1", "llm-gouv-a100-2"]
    for host in agents.values():
        assert ipaddress.ip_address(host["ansible_host"]).is_private
        assert host["ansible_ssh_common_args"] == "-o ProxyJump=outscale@198.18.0.10"
    assert inv["vars"]["rke2_node_server_url"].endswith(":9345")
    assert inv["children"]["pool_a100"]["vars"]["gpu_health_expected_gpu_count"] == 2
