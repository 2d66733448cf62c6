"""The datasets a team's jobs read through a volume: csi-s3 gives every dynamically provisioned
volume its own `<volume id>/` prefix in the class's bucket (csi-s3 v0.43.7 README, "Bucket"), so a
claim of the datasets class is empty. What `s3://@datasets/...` names must be reached through a
static volume whose handle is the bucket, bound to the team's claim, read-only."""

from __future__ import annotations

import pytest
import upstream

from infratech.cli.plan import record

PV, PVC, RELEASE = "kubernetes:core/v1:PersistentVolume", "kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:helm.sh/v3:Release"
STACKS_WITH_DATASETS = ("ovh-gra11", "scaleway-fr-par-2-h100", "existing-onprem")


@pytest.fixture(scope="module", params=STACKS_WITH_DATASETS)
def plan(request, project):
    return record(project, request.param)


def volumes(rec) -> dict[str, dict]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in rec.by_type(PV)}


def claims(rec) -> dict[tuple[str, str], dict]:
    return {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs for r in rec.by_type(PVC)}


def csi_s3(rec) -> dict:
    return next(r.inputs for r in rec.by_type(RELEASE) if r.inputs["name"] == "csi-s3")


def quantity(q: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
    for unit, factor in units.items():
        if q.endswith(unit):
            return int(q[: -len(unit)]) * factor
    return int(q)


def team_volume(rec, team: str) -> tuple[dict, dict]:
    """(the PersistentVolume, the claim it is bound to) of ``team``, binding checked as the
    PersistentVolume controller checks a pre-bound pair: claimRef, class, access modes, size."""
    claim_refs = {(v["spec"]["claimRef"]["namespace"], v["spec"]["claimRef"]["name"]): v for v in volumes(rec).values() if v["spec"].get("claimRef")}
    ns_claims = [c for (ns, _), c in claims(rec).items() if ns == team and (ns, c["metadata"]["name"]) in claim_refs]
    assert len(ns_claims) == 1, f"{team}: expected one claim bound to a static volume, got {len(ns_claims)}"
    claim = ns_claims[0]
    pv = claim_refs[(team, claim["metadata"]["name"])]
    assert claim["spec"].get("volumeName") == pv["metadata"]["name"]
    assert claim["spec"].get("storageClassName") == pv["spec"].get("storageClassName") == "", "no dynamic provisioning for either"
    assert set(claim["spec"]["accessModes"]) <= set(pv["spec"]["accessModes"])
    assert quantity(claim["spec"]["resources"]["requests"]["storage"]) <= quantity(pv["spec"]["capacity"]["storage"])
    return pv, claim


def test_should_give_every_team_the_datasets_bucket_itself(plan):
    bucket = plan.outputs["object_store"]["buckets"]["datasets"]  # what s3://@datasets/ names
    assert plan.outputs["teams"]
    for team in plan.outputs["teams"]:
        pv, _ = team_volume(plan, team)
        handle = pv["spec"]["csi"]["volumeHandle"]
        assert handle.split("/", 1)[0] == bucket and "pvc-" not in handle
        assert handle == bucket, "the bucket's root, where workloads.data writes packed/ and raw/"


def test_should_be_read_only_and_outlive_its_claim(plan):
    assert len(volumes(plan)) == len(plan.outputs["teams"]), "one static volume per team (a volume binds one claim)"
    for pv in volumes(plan).values():
        spec = pv["spec"]
        assert spec["accessModes"] == ["ReadOnlyMany"]
        assert spec["persistentVolumeReclaimPolicy"] == "Retain", "deleting the claim must never touch the datasets"
        assert spec["csi"]["readOnly"] is True
        options = spec["csi"]["volumeAttributes"]["options"].split()
        # csi-s3 v0.43.7 ignores readOnly (nodeserver.go); GeeseFS must mount read-only itself
        assert options[options.index("-o") + 1].split(",").count("ro") == 1
        modes = [int(options[options.index(flag) + 1], 8) for flag in ("--dir-mode", "--file-mode")]
        assert all(mode & 0o222 == 0 for mode in modes), "nothing shown as writable"


def test_should_reach_the_driver_with_a_read_only_secret_beside_the_release(plan):
    release = csi_s3(plan)
    chart_secret = release["values"]["secret"].get("name") or upstream.chart_defaults("csi-s3")["secret"]["name"]
    assert volumes(plan)
    for pv in volumes(plan).values():
        csi = pv["spec"]["csi"]
        assert csi["driver"] == "ru.yandex.s3.csi"  # the CSIDriver of csi-s3 v0.43.7 (templates/csi-s3.yaml)
        ref = csi["nodeStageSecretRef"]
        assert ref == csi["nodePublishSecretRef"], "the driver reads the keys at NodeStageVolume"
        assert ref["namespace"] == release["namespace"] and ref["name"] != chart_secret, "not the scratch class's key"
        declared = [r for r in plan.by_type("kubernetes:core/v1:Secret") if (r.inputs["metadata"]["name"], r.inputs["metadata"].get("namespace")) == (ref["name"], ref["namespace"])]
        assert len(declared) == 1, "the secret the volume names is declared"
        assert csi["volumeAttributes"]["mounter"] == "geesefs"


def test_should_keep_the_dynamic_class_for_scratch(plan):
    storage_class = csi_s3(plan)["values"]["storageClass"]
    assert storage_class["create"] is True and storage_class["singleBucket"] == plan.outputs["object_store"]["buckets"]["datasets"]
    assert "infratech-datasets-s3" in plan.outputs["storage_classes"]


def test_should_make_no_datasets_volume_without_a_datasets_bucket(project):
    rec = record(project, "scaleway-fr-par-2-l4")  # a serving stack: a models bucket only
    assert "datasets" not in rec.outputs["object_store"]["buckets"]
    assert volumes(rec) == {}


def test_the_volume_secret_carries_the_names_the_driver_reads():
    from infratech.program.handle import S3Key
    from infratech.program.platform.storage import volume_secret_data

    data = volume_secret_data(S3Key("AK", "SK"), "https://s3.gra.io.cloud.ovh.net", "gra")
    # k8s-csi-s3 v0.43.7 pkg/s3/client.go NewClientFromSecret reads these four names
    assert data == {"accessKeyID": "AK", "secretAccessKey": "SK", "endpoint": "https://s3.gra.io.cloud.ovh.net", "region": "gra"}
