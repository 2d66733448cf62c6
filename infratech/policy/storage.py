"""The rule about who reads the object store without a credential: canned ACLs, ACL grants, bucket
and user policies, single objects. Plain functions over plain data, registered in :mod:`.rules`."""

from __future__ import annotations

import json
from typing import Any

from .model import COMPUTED, SECRET, Resource, Settings, walk

# the resources of pulumiverse_scaleway 1.60 and pulumi_ovh 2.22 through which an object or a bucket
# can be opened (their argument names: acl, access_control_policy.grants[].grantee.uri, policy,
# visibility). pulumi_ovh's CloudStorageObjectBucket has no ACL or bucket-policy argument: on OVH the
# documents are the user policies (S3Policy); any ACL-like argument a bucket gains is read too.
SCW_BUCKET, SCW_ACL = "scaleway:object/bucket:Bucket", "scaleway:object/bucketAcl:BucketAcl"
SCW_POLICY, SCW_ITEM = "scaleway:object/bucketPolicy:BucketPolicy", "scaleway:object/item:Item"
OVH_BUCKETS = ("ovh:index/cloudStorageObjectBucket:CloudStorageObjectBucket", "ovh:CloudProject/storage:Storage")
OVH_POLICY = "ovh:CloudProject/s3Policy:S3Policy"
# S3 predefined groups (AWS S3 ACL overview, "Amazon S3 predefined groups"; Scaleway's ACLs take the same URIs)
PUBLIC_GROUPS = ("/groups/global/AllUsers", "/groups/global/AuthenticatedUsers")
_ACL_KEYS = frozenset({"acl", "cannedAcl", "visibility"})


def bucket_not_public(res: Resource, settings: Settings) -> list[str]:
    problems = []
    if res.type in (SCW_BUCKET, SCW_ACL, SCW_ITEM, *OVH_BUCKETS):
        for path, value in walk(res.props):
            if path.rsplit(".", 1)[-1] in _ACL_KEYS and _public_canned(value):
                problems.append(f"{res.label()}: {path} {value!r} opens it beyond its owner; use private")
    if res.type == SCW_ACL:
        for grant in res.get("accessControlPolicy.grants") or []:
            uri = ((grant or {}).get("grantee") or {}).get("uri") if isinstance(grant, dict) else None
            if isinstance(uri, str) and uri.endswith(PUBLIC_GROUPS):
                problems.append(f"{res.label()}: grants {grant.get('permission')} to {uri.rsplit('/', 1)[-1]}; "
                                "grant to named projects or applications only")
    if res.type in (SCW_POLICY, OVH_POLICY):
        problems += [f"{res.label()}: {why}" for why in _policy_problems(res.props.get("policy"))]
    return problems


def _public_canned(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("public", "authenticated"))


def _policy_problems(document: Any) -> list[str]:
    """An S3 policy document (a JSON string, or already decoded) whose Allow statements name every
    principal (``"*"``, ``{"AWS": "*"}``, ``{"SCW": "*"}``): anyone, without a credential."""
    if document in (None, COMPUTED, SECRET):
        return []
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    statements = document.get("Statement") if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    problems = []
    for i, st in enumerate(statements or []):
        if isinstance(st, dict) and st.get("Effect") == "Allow" and _anyone(st.get("Principal")):
            problems.append(f"policy Statement[{i}] allows {st.get('Action')!r} to Principal '*' (anyone); "
                            "name the principals that need it")
    return problems


def _anyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, list):
        return any(_anyone(p) for p in principal)
    if isinstance(principal, dict):
        return any(_anyone(v) for v in principal.values())
    return False
