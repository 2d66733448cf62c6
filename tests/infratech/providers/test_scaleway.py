"""The Scaleway component declares Kapsule, its network and its buckets as pulumiverse_scaleway expects."""

from __future__ import annotations

import pytest

from infratech.cli.plan import record
from infratech.cli.plan.runtime import COMPUTED, SECRET
from infratech.program.providers import scaleway as scw_provider

POOL = "scaleway:kubernetes/pool:Pool"
CLUSTER = "scaleway:kubernetes/cluster:Cluster"
BUCKET = "scaleway:object/bucket:Bucket"


@pytest.fixture(scope="module")
def train(project):
    return record(project, "scaleway-fr-par-2-h100")


@pytest.fixture(scope="module")
def serve(project):
    return record(project, "scaleway-fr-par-2-l4")


def named(rec, type_: str, name: str):
    (found,) = [r for r in rec.by_type(type_) if r.name == name]
    return found


def pools(rec):
    return {r.inputs["name"]: r for r in rec.by_type(POOL)}


def test_everything_hangs_under_one_component(train):
    component = train.one("infratech:providers:ScalewayCluster")
    scaleway = [r for r in train.resources if r.package == "scaleway"]
    assert scaleway and all(r.parent == component.urn for r in scaleway)


def test_kapsule_cluster_settings(train):
    cluster = train.one(CLUSTER).inputs
    assert cluster["region"] == "fr-par" and cluster["type"] == "kapsule"
    assert cluster["cni"] == "cilium"
    assert cluster["version"] == "1.34", "auto-upgrade takes a minor version"
    assert cluster["autoUpgrade"] == {"enable": True, "maintenanceWindowDay": "sunday", "maintenanceWindowStartHour": 3}
    assert cluster["autoscalerConfig"]["expander"] == "least_waste"
    assert cluster["autoscalerConfig"]["scaleDownUnneededTime"] == "10m"
    assert cluster["deleteAdditionalResources"] is False, "volumes of workloads outlive the cluster"
    assert cluster["privateNetworkId"] == COMPUTED
    assert "openIdConnectConfig" not in cluster, "OIDC is optional and off unless configured"
    assert "kubeconfigs" in train.one(CLUSTER).secret_outputs or train.outputs["kubeconfig"] == SECRET
    assert train.outputs["kubeconfig"] == SECRET


def test_private_network_behind_a_gateway_that_pushes_the_default_route(train):
    net = train.one("scaleway:network/privateNetwork:PrivateNetwork").inputs
    assert net["ipv4Subnet"] == {"subnet": "10.42.0.0/16"} and net["region"] == "fr-par"
    gateway = train.one("scaleway:network/publicGateway:PublicGateway").inputs
    assert gateway["zone"] == "fr-par-2" and gateway["bastionEnabled"] is False
    link = train.one("scaleway:network/gatewayNetwork:GatewayNetwork")
    assert link.inputs["ipamConfigs"] == [{"pushDefaultRoute": True}]
    assert link.inputs["enableMasquerade"] is True
    for pool in pools(train).values():
        assert pool.inputs["publicIpDisabled"] is True, "nodes go out through the gateway"
        assert link.urn in pool.dependencies, "a pool without public IPs needs the route first"


def test_api_allowlist(train):
    acl = train.one("scaleway:kubernetes/acl:Acl").inputs
    assert [r["ip"] for r in acl["aclRules"]] == ["203.0.113.0/24"]


def test_gpu_pool_in_the_zone_that_sells_it_labelled_tainted_and_placed(train):
    by_name = pools(train)
    assert set(by_name) == {"system", "h100-sxm"}
    gpu = by_name["h100-sxm"].inputs
    assert gpu["nodeType"] == "H100-SXM-8-80G" and gpu["zone"] == "fr-par-2"
    assert (gpu["minSize"], gpu["size"], gpu["maxSize"], gpu["autoscaling"]) == (0, 2, 4, True)
    assert gpu["labels"]["infratech.io/gpu-model"] == "h100-sxm"
    assert gpu["labels"]["infratech.io/gpu-count"] == "8"
    assert gpu["taints"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "present"}]
    assert gpu["rootVolumeSizeInGb"] == 500 and gpu["rootVolumeType"] == "sbs_15k"
    assert gpu["placementGroupId"] == COMPUTED
    group = train.one("scaleway:instance/placementGroup:PlacementGroup").inputs
    assert group["zone"] == "fr-par-2" and group["policyType"] == "low_latency"
    system = by_name["system"].inputs
    assert "taints" not in system or system["taints"] == []
    assert "placementGroupId" not in system
    assert system["zone"] == "fr-par-2", "pools without a zone take the stack's default zone"


def test_buckets_versioned_encrypted_protected_with_lifecycle(train):
    buckets = {r.inputs["name"]: r for r in train.by_type(BUCKET)}
    assert set(buckets) == {"llm-par2-train-datasets", "llm-par2-train-checkpoints"}
    for b in buckets.values():
        assert b.protect and b.inputs["versioning"] == {"enabled": True}
        assert b.inputs["forceDestroy"] is False
        assert {"abortIncompleteMultipartUploadDays": 7, "enabled": True, "id": "abort-incomplete-uploads"} in b.inputs["lifecycleRules"]
        assert b.inputs["projectId"] == COMPUTED, "buckets live in the stack's data project"
    expiring = [r for r in buckets["llm-par2-train-checkpoints"].inputs["lifecycleRules"] if r["id"] == "expire-old-versions"]
    assert expiring == [{"enabled": True, "id": "expire-old-versions", "noncurrentVersionExpiration": {"noncurrentDays": 30}}]
    assert len(buckets["llm-par2-train-datasets"].inputs["lifecycleRules"]) == 1
    sse = train.by_type("scaleway:object/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sorted(r.inputs["bucket"] for r in sse) == sorted(buckets)
    assert all(r.inputs["rules"] == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}] for r in sse)


def test_api_key_reaches_only_the_data_project(train):
    project = train.one("scaleway:account/project:Project")
    policy = named(train, "scaleway:iam/policy:Policy", "llm-par2-train-s3-policy")
    app = named(train, "scaleway:iam/application:Application", "llm-par2-train-s3-app")
    assert project.urn in policy.dependencies and app.urn in policy.dependencies
    (rule,) = policy.inputs["rules"]
    assert rule["projectIds"] == [COMPUTED], "scoped to the data project, whose id exists after creation"
    assert "organizationId" not in rule, "never organisation-wide"
    assert rule["permissionSetNames"] == list(scw_provider.OBJECT_STORAGE_PERMISSIONS)
    assert not any("FullAccess" in p or "BucketsWrite" in p or "BucketsDelete" in p for p in rule["permissionSetNames"])
    for bucket in train.by_type(BUCKET):
        assert project.urn in bucket.dependencies
    for key in train.by_type("scaleway:iam/apiKey:ApiKey"):
        assert key.secret_outputs == ["secretKey"]
    store = train.outputs["object_store"]
    assert store["endpoint"] == "https://s3.fr-par.scw.cloud" and store["region"] == "fr-par"
    assert store["access_key_id"] == SECRET and store["secret_access_key"] == SECRET


def test_handle_says_the_gpu_operator_is_there(train, serve):
    for rec in (train, serve):
        assert rec.outputs["preinstalled"] == {
            "driver": True,
            "toolkit": True,
            "gpu_operator": True,
            "distribution": "managed",
        }
        assert rec.outputs["country"] == "FR"


def test_inference_stack(serve):
    by_name = pools(serve)
    l4 = by_name["l4"].inputs
    assert l4["nodeType"] == "L4-1-24G" and l4["zone"] == "fr-par-2"
    assert (l4["minSize"], l4["size"], l4["maxSize"]) == (1, 2, 6)
    assert "placementGroupId" not in l4
    assert not serve.by_type("scaleway:instance/placementGroup:PlacementGroup")
    assert [r.inputs["name"] for r in serve.by_type(BUCKET)] == ["llm-par2-serve-models"]


def _variant(project, tmp_path, stack: str, old: str, new: str):
    """The shipped stack with one edit, recorded: how a user's own settings reach the resources."""
    from infratech.cli.stacks import Project

    text = project.stack_file(stack).read_text(encoding="utf-8")
    assert old in text
    stack_dir = tmp_path / "stacks"
    stack_dir.mkdir()
    (stack_dir / f"Pulumi.{stack}.yaml").write_text(text.replace(old, new), encoding="utf-8")
    return record(Project(root=project.root, name=project.name, stack_dir=stack_dir, main=project.main), stack)


def test_oidc_patch_version_and_cluster_project(project, tmp_path):
    project_id = "0c4a0a1e-2f1b-4c1f-9a4e-3d2b1c0a9f8e"
    rec = _variant(
        project, tmp_path, "scaleway-fr-par-2-l4",
        "    zone: fr-par-2\n",
        "    zone: fr-par-2\n"
        f"    project_id: {project_id}\n"
        "    data_project: false\n"
        '    kube_version: "1.34.2"\n'
        "    auto_upgrade:\n      enabled: false\n"
        "    oidc:\n      issuer_url: https://sso.example.org/realms/ml\n      client_id: kapsule\n"
        "      groups_claims: [groups]\n",
    )
    cluster = rec.one(CLUSTER).inputs
    assert cluster["version"] == "1.34.2" and cluster["autoUpgrade"]["enable"] is False
    assert cluster["projectId"] == project_id
    assert cluster["openIdConnectConfig"] == {
        "clientId": "kapsule",
        "groupsClaims": ["groups"],
        "issuerUrl": "https://sso.example.org/realms/ml",
    }
    assert not rec.by_type("scaleway:account/project:Project")
    for policy in rec.by_type("scaleway:iam/policy:Policy"):
        (rule,) = policy.inputs["rules"]
        assert rule["projectIds"] == [project_id]
    assert all(b.inputs["projectId"] == project_id for b in rec.by_type(BUCKET))


def test_without_gateway_nodes_keep_public_ips(project, tmp_path):
    rec = _variant(project, tmp_path, "scaleway-fr-par-2-l4", "  infratech:pools:\n", "  infratech:network:\n    gateway: false\n  infratech:pools:\n")
    assert not rec.by_type("scaleway:network/publicGateway:PublicGateway")
    assert all(p.inputs["publicIpDisabled"] is False for p in rec.by_type(POOL))


def test_deployer_joins_the_acl_and_the_platform_waits_for_the_system_pool(project, variant):
    rec = variant("scaleway-fr-par-2-h100", lambda c: c["infratech:scaleway"].update(deployer_cidrs=["198.18.7.1/32"]))
    rules = rec.one("scaleway:kubernetes/acl:Acl").inputs["aclRules"]
    assert [(r["ip"], r["description"]) for r in rules] == [
        ("203.0.113.0/24", "infratech api_allowed_cidrs"), ("198.18.7.1/32", "infratech deployer_cidrs")]
    provider = rec.one("pulumi:providers:kubernetes")
    by_name = pools(rec)
    system = [name for name, r in by_name.items() if r.inputs["labels"]["infratech.io/role"] == "system"]
    assert system and all(by_name[n].urn in provider.dependencies for n in system)
    assert all(r.urn not in provider.dependencies for n, r in by_name.items() if n not in system)


def test_the_object_storage_key_expires_and_rotates(train, variant):
    rotation = train.one("time:index/rotating:Rotating")
    assert rotation.inputs["rotationDays"] == 90
    for key in train.by_type("scaleway:iam/apiKey:ApiKey"):
        assert rotation.urn in key.dependencies and key.inputs["expiresAt"] == COMPUTED, "the expiry follows the rotation"
        assert key.replace_on_changes == ["expiresAt"], "a new expiry is a new key"
    assert scw_provider._plus_grace("2027-03-01T10:00:00Z") == "2027-03-15T10:00:00Z"
    shorter = variant("scaleway-fr-par-2-h100", lambda c: c["infratech:scaleway"].update(api_key_rotation_days=30))
    assert shorter.one("time:index/rotating:Rotating").inputs["rotationDays"] == 30


def test_every_bucket_has_a_policy_over_every_application(train):
    apps = {r.urn for r in train.by_type("scaleway:iam/application:Application")}
    assert len(apps) == 5, "the platform, read-only, promoter and one per team (two teams)"
    policies = train.by_type("scaleway:object/bucketPolicy:BucketPolicy")
    buckets = {r.urn: r for r in train.by_type(BUCKET)}
    assert len(policies) == len(buckets)
    for p in policies:
        assert apps <= set(p.dependencies), "the document names every application"
        assert set(p.dependencies) & set(buckets)
