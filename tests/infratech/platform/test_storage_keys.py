"""Whose storage key lands where: each team's Secret holds that team's key, never another's;
serving and the datasets mounts hold the read-only key; no namespace holds the promoter's.

The plan masks secret values, so a key is followed to the credential it came from: a Secret
built from a credential's outputs depends on that credential (Pulumi records an Output's
resources as the dependencies of the resource that takes it)."""

from __future__ import annotations

import pytest

from infratech.cli.plan import record

CREDENTIAL = "ovh:CloudProject/s3Credential:S3Credential"
SECRET = "kubernetes:core/v1:Secret"


@pytest.fixture(scope="module")
def ovh(project):
    return record(project, "ovh-gra11")


def _key_of(rec, name: str, namespace: str) -> set[str]:
    creds = {r.urn: r.name for r in rec.by_type(CREDENTIAL)}
    (secret,) = [r for r in rec.by_type(SECRET) if r.inputs["metadata"]["name"] == name and r.inputs["metadata"].get("namespace") == namespace]
    return {creds[d] for d in secret.dependencies if d in creds}


@pytest.mark.parametrize("team", ["pretraining", "applied"])
def test_each_team_secret_holds_its_own_key_only(ovh, team):
    assert _key_of(ovh, "object-store", team) == {f"llm-gra11-s3-credential-team-{team}"}


def test_serving_and_dataset_mounts_hold_the_read_only_key(ovh):
    assert _key_of(ovh, "object-store", "serving") == {"llm-gra11-s3-credential-readonly"}
    assert _key_of(ovh, "csi-s3-datasets-readonly", "kube-system") == {"llm-gra11-s3-credential-readonly"}


def test_static_datasets_volumes_mount_with_the_read_only_secret(ovh):
    for pv in ovh.by_type("kubernetes:core/v1:PersistentVolume"):
        csi = pv.inputs["spec"]["csi"]
        assert csi["nodeStageSecretRef"]["name"] == csi["nodePublishSecretRef"]["name"] == "csi-s3-datasets-readonly"


def test_no_kubernetes_object_holds_the_promoters_key(ovh):
    creds = {r.urn for r in ovh.by_type(CREDENTIAL) if r.name == "llm-gra11-s3-credential-promoter"}
    holders = [r.name for r in ovh.resources if r.type.startswith("kubernetes:") and creds & set(r.dependencies)]
    assert holders == []
