"""The stack's state backend made ready: the bucket created when missing, versioned and encrypted.

``pulumi login`` does not create a bucket, and a state bucket must keep every version of the
state (an interrupted write, a bad update) and be encrypted at rest. The S3 calls are boto3's,
against the provider's endpoint, with the deployer's S3 keys (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, which Pulumi's S3 backend reads too).
"""

from __future__ import annotations

import os
from typing import Callable

from ..state import Backend


class BackendError(Exception):
    """The state bucket cannot be checked or made; the message says what to do."""


def ensure_bucket(backend: Backend, echo: Callable[[str], None] = print) -> bool:
    """Create the state bucket when missing (versioned, AES256 by default); True when created.
    Only for S3 backends; another kind is used as it is."""
    if backend.kind != "s3" or backend.bucket is None:
        return False
    try:
        import boto3  # the state extra: `pip install 'infratech[state]'`; planning does not need it
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise BackendError("creating the state bucket needs boto3: pip install 'infratech[state]'") from None
    if not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")):
        raise BackendError(f"the state bucket {backend.bucket} needs S3 keys of {backend.provider or backend.endpoint}: "
                           "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (docs/state.md)")
    scheme = "http" if (backend.endpoint or "").startswith(("127.", "localhost")) else "https"
    endpoint = f"{scheme}://{backend.endpoint}" if backend.endpoint else None
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=backend.region)
    try:
        try:
            s3.head_bucket(Bucket=backend.bucket)
            return False
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
        args = {"Bucket": backend.bucket}
        if backend.region and backend.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": backend.region}
        s3.create_bucket(**args)
        s3.put_bucket_versioning(Bucket=backend.bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(Bucket=backend.bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    except (BotoCoreError, ClientError) as exc:
        raise BackendError(f"state bucket {backend.bucket} at {backend.endpoint}: {exc}") from None
    echo(f"created the state bucket {backend.bucket} ({backend.endpoint}, {backend.region}): versioned, encrypted")
    return True
