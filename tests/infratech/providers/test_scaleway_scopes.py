"""Scaleway: what each application may do, decided on the bucket policies the stack writes.

The application ids exist only after creation, so the plan holds the policies as unknown; the
documents are built here by the very function the provider calls, with ids of our own."""

from __future__ import annotations

from s3_policy_eval import decide

from infratech.program.providers import s3_scopes

IDS = {"platform": "0" * 8, "readonly": "1" * 8, "promoter": "2" * 8, "team:pretraining": "3" * 8, "team:applied": "4" * 8}
ADMIN = "user_id:5b5e1d8e-0000-4000-8000-000000000000"


def who(role: str) -> str:
    return f"application_id:{IDS[role]}"


def policy(purpose: str, bucket: str) -> str:
    return s3_scopes.bucket_policy_document(purpose, bucket, IDS, (ADMIN,))


def can(doc: str, role_or_principal: str, action: str, resource: str) -> bool:
    principal = who(role_or_principal) if role_or_principal in IDS else role_or_principal
    return decide(doc, action, resource, principal) == "Allow"


def test_a_team_application_is_denied_another_teams_prefix():
    doc = policy("checkpoints", "ckpt")
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert can(doc, "team:pretraining", action, "ckpt/pretraining/run/model.safetensors"), action
        assert not can(doc, "team:pretraining", action, "ckpt/applied/run/model.safetensors"), action
        assert not can(doc, "team:applied", action, "ckpt/pretraining/run/model.safetensors"), action


def test_promotions_only_by_the_promoter():
    doc = policy("checkpoints", "ckpt")
    key = "ckpt/pretraining/run/export/promotion.json"
    assert decide(doc, "s3:PutObject", key, who("team:pretraining")) == "ExplicitDeny"
    assert can(doc, "promoter", "s3:PutObject", key)
    assert can(doc, "promoter", "s3:PutObject", "ckpt/promotions/lucie-7b/registry.json")


def test_readonly_reads_and_writes_nothing_admins_keep_control_strangers_get_nothing():
    doc = policy("datasets", "data")
    assert can(doc, "readonly", "s3:GetObject", "data/packed/x/shard-0.bin")
    assert not can(doc, "readonly", "s3:PutObject", "data/packed/x/shard-0.bin")
    assert can(doc, ADMIN, "s3:PutBucketPolicy", "data"), "the deployer is not locked out"
    assert not can(doc, "application_id:99999999", "s3:GetObject", "data/packed/x"), "2023-04-17: not allowed is denied"
    assert can(doc, "team:applied", "s3:GetObject", "data/packed/x/shard-0.bin"), "the shared corpus"
    assert not can(doc, "team:applied", "s3:PutObject", "data/pretraining/mine.jsonl")


def test_a_bucket_policy_names_only_its_own_bucket():
    doc = policy("checkpoints", "ckpt")
    assert not can(doc, "team:pretraining", "s3:GetObject", "data/pretraining/x")
    assert '"Version": "2023-04-17"' in doc
