"""Who may touch which objects: the S3 policy documents of the platform's storage identities.

One identity per purpose, so that no key in a team's namespace reaches another team's data:

- ``team:<name>``: reads and writes ``<bucket>/<team>/…`` in every bucket (checkpoints are written
  under ``s3://@checkpoints/<team>/<run>``, docs/jobs.md); reads the whole datasets bucket (the
  shared corpus, which every team's ``datasets`` claim mounts read-only); never writes a
  promotion (``promotion.json``, ``promotions/…``): an explicit Deny, which no Allow overrides.
- ``readonly``: reads every bucket, writes nothing: the serving namespace and csi-s3's mounts.
- ``promoter``: the evaluation gate's identity: reads every bucket, writes the checkpoints bucket,
  promotions included. No team namespace holds its key.

Listing (``s3:ListBucket``) is granted on the bucket, so a team sees the *names* of other teams'
objects, not their content: OVHcloud's documented policy examples carry no ``Condition``
(help.ovhcloud.com "Object Storage - Identity and access management"), so a ``s3:prefix``
condition is not relied on.

The documents follow the AWS IAM grammar (Effect / Action / Resource with ``*`` and ``?``
wildcards; an explicit Deny wins over any Allow; nothing allowed is denied), which is what
OVHcloud's S3 user policies take ({"Statement":[{"Sid","Effect","Action","Resource"}]}).
"""

from __future__ import annotations

import json

DATASETS = "datasets"
CHECKPOINTS = "checkpoints"
READ = ("s3:GetObject",)
WRITE = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
BUCKET_READ = ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
# what the gate writes and serving trusts (workloads/gate: PROMOTION_FILE, registry "promotions")
PROMOTION_KEYS = ("*/promotion.json", "promotion.json", "*/promotions/*", "promotions/*")


def _arn(bucket: str, key: str | None = None) -> str:
    return f"arn:aws:s3:::{bucket}" if key is None else f"arn:aws:s3:::{bucket}/{key}"


def scaleway_resource(bucket: str, key: str | None = None) -> str:
    """Scaleway bucket policies name resources ``<bucket>`` and ``<bucket>/<key>``, no ARN
    (scaleway.com/en/docs/object-storage/api-cli/create-bucket-policy, its example policy)."""
    return bucket if key is None else f"{bucket}/{key}"


def _doc(statements: list[dict]) -> str:
    return json.dumps({"Statement": statements}, sort_keys=True)


def team_statements(team: str, buckets: dict[str, str], _arn=_arn) -> list[dict]:
    names = [buckets[p] for p in sorted(buckets)]
    statements = [
        {"Sid": "SeeBuckets", "Effect": "Allow", "Action": list(BUCKET_READ), "Resource": [_arn(b) for b in names]},
        {
            "Sid": "OwnPrefix",
            "Effect": "Allow",
            "Action": list(READ + WRITE),
            "Resource": [_arn(b, f"{team}/*") for b in names],
        },
    ]
    if DATASETS in buckets:
        statements.append({"Sid": "SharedDatasets", "Effect": "Allow", "Action": list(READ), "Resource": [_arn(buckets[DATASETS], "*")]})
    statements.append(
        {
            "Sid": "NoPromotions",
            "Effect": "Deny",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": [_arn(b, k) for b in names for k in PROMOTION_KEYS],
        }
    )
    return statements


def readonly_statements(buckets: dict[str, str], _arn=_arn) -> list[dict]:
    names = [buckets[p] for p in sorted(buckets)]
    return [
        {"Sid": "SeeBuckets", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": [_arn(b) for b in names]},
        {"Sid": "ReadObjects", "Effect": "Allow", "Action": list(READ), "Resource": [_arn(b, "*") for b in names]},
    ]


def promoter_statements(buckets: dict[str, str], _arn=_arn) -> list[dict]:
    statements = readonly_statements(buckets, _arn)
    if CHECKPOINTS in buckets:
        statements.append({"Sid": "WriteVerdicts", "Effect": "Allow", "Action": list(WRITE), "Resource": [_arn(buckets[CHECKPOINTS], "*")]})
    return statements


def team_policy(team: str, buckets: dict[str, str]) -> str:
    return _doc(team_statements(team, buckets))


def readonly_policy(buckets: dict[str, str]) -> str:
    return _doc(readonly_statements(buckets))


def promoter_policy(buckets: dict[str, str]) -> str:
    return _doc(promoter_statements(buckets))


def bucket_policy_document(purpose: str, bucket: str, principals: dict[str, str], admins: tuple[str, ...]) -> str:
    """A Scaleway bucket policy (version 2023-04-17: what it does not allow is denied) for one
    bucket: each identity's statements above, limited to this bucket, under its own Principal
    (``{"SCW": "application_id:<id>"}``). ``principals``: ``platform``, ``readonly``,
    ``promoter``, ``team:<name>`` -> application id. ``admins``: principals (``user_id:…``,
    ``application_id:…``) kept in full control of the bucket, the deployer first among them."""
    one = {purpose: bucket}
    statements: list[dict] = []
    if admins:
        statements.append({"Sid": "Admins", "Effect": "Allow", "Principal": {"SCW": list(admins)}, "Action": ["s3:*"],
                           "Resource": [scaleway_resource(bucket), scaleway_resource(bucket, "*")]})
    for role, app_id in sorted(principals.items()):
        if role == "platform":
            own = [{"Sid": "Platform", "Effect": "Allow", "Action": list(BUCKET_READ + READ + WRITE),
                    "Resource": [scaleway_resource(bucket), scaleway_resource(bucket, "*")]}]
        elif role == "readonly":
            own = readonly_statements(one, scaleway_resource)
        elif role == "promoter":
            own = promoter_statements(one, scaleway_resource)
        else:
            own = team_statements(role.removeprefix("team:"), one, scaleway_resource)
        tag = "".join(c for c in role.title() if c.isalnum())  # Sid: letters and digits only
        statements += [{**st, "Sid": f"{tag}{st['Sid']}", "Principal": {"SCW": f"application_id:{app_id}"}} for st in own]
    return json.dumps({"Version": "2023-04-17", "Id": f"infratech-{purpose}", "Statement": statements}, sort_keys=True)
