"""The serving gate: refuse a checkpoint the evaluation did not promote, then copy it for vLLM.

Runs as the init container of llm-serve (Python and boto3 from the training image):

    python /opt/infratech/gate.py --model s3://@checkpoints/team/run/export \
        --promotion s3://@checkpoints/team/run/export/promotion.json --dest /models/model \
        [--force-reason "why an unpromoted checkpoint is served"]

A location is ``s3://BUCKET/KEY`` (``@checkpoints``/``@datasets`` name the stack's buckets through
S3_BUCKET_CHECKPOINTS / S3_BUCKET_DATASETS, as workloads/objectstore.py does) or a local path.
The verdict ``promotion.json`` must be a JSON object with ``"promoted": true``; its ``reasons``
(or ``reason``) are printed when it is not. Exit codes: 0 copied, 3 refused (no verdict, or not
promoted), 2 bad input or nothing to copy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ALIASES = {"@checkpoints": "S3_BUCKET_CHECKPOINTS", "@datasets": "S3_BUCKET_DATASETS"}
REFUSED, BAD_INPUT = 3, 2


class GateError(Exception):
    def __init__(self, message: str, code: int = BAD_INPUT):
        super().__init__(message)
        self.code = code


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    if bucket in ALIASES:
        name = os.environ.get(ALIASES[bucket])
        if not name:
            raise GateError(f"{uri}: {bucket} names the bucket in ${ALIASES[bucket]}, which is not set (object-store Secret)")
        bucket = name
    if not bucket:
        raise GateError(f"{uri}: no bucket name")
    return bucket, key


def _client():
    import boto3  # only for s3:// locations

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"), region_name=os.environ.get("AWS_REGION"))


def read_text(location: str) -> str | None:
    """The file's text, or None when it does not exist."""
    if not location.startswith("s3://"):
        path = Path(location)
        return path.read_text(encoding="utf-8") if path.is_file() else None
    bucket, key = split(location)
    client = _client()
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except client.exceptions.NoSuchKey:
        return None


def verdict(location: str) -> tuple[bool, list[str]]:
    """(promoted, reasons) from the evaluation's promotion.json."""
    text = read_text(location)
    if text is None:
        return False, [f"no promotion verdict at {location}: the checkpoint was never evaluated (infratech submit eval)"]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return False, [f"{location} is not JSON ({exc})"]
    if not isinstance(data, dict):
        return False, [f"{location} is not a JSON object"]
    reasons = data.get("reasons", data.get("reason", []))
    reasons = [str(r) for r in (reasons if isinstance(reasons, list) else [reasons])]
    if data.get("promoted") is True:
        return True, reasons
    return False, reasons or [f"{location} does not say \"promoted\": true"]


def copy(source: str, dest: Path) -> tuple[int, int]:
    """Copy every file under ``source`` into ``dest``; (files, bytes)."""
    dest.mkdir(parents=True, exist_ok=True)
    files = size = 0
    if not source.startswith("s3://"):
        root = Path(source)
        if not root.is_dir():
            raise GateError(f"{source}: not a directory")
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            target = dest / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            files, size = files + 1, size + path.stat().st_size
    else:
        bucket, prefix = split(source.rstrip("/") + "/")
        client = _client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                relative = obj["Key"][len(prefix):]
                if not relative or relative.endswith("/"):
                    continue
                target = dest / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(target))
                files, size = files + 1, size + obj["Size"]
    if files == 0:
        raise GateError(f"{source}: no files to serve")
    return files, size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="refuse an unpromoted checkpoint, then copy it for vLLM")
    p.add_argument("--model", required=True, help="checkpoint: s3:// prefix or directory (Hugging Face layout)")
    p.add_argument("--promotion", required=True, help="the evaluation's promotion.json")
    p.add_argument("--dest", required=True, type=Path, help="local directory vLLM serves from")
    p.add_argument("--force-reason", default="", help="serve even if not promoted, for this reason")
    args = p.parse_args(argv)
    try:
        promoted, reasons = verdict(args.promotion)
        if promoted:
            print(f"gate: {args.model} is promoted ({args.promotion})", flush=True)
        elif args.force_reason:
            print(f"gate: WARNING {args.model} is NOT promoted, served anyway: {args.force_reason}", flush=True)
            for reason in reasons:
                print(f"gate:   not promoted because: {reason}", flush=True)
        else:
            for reason in reasons:
                print(f"gate: refused: {reason}", file=sys.stderr, flush=True)
            print(f"gate: refusing to serve {args.model}: it is not promoted (evaluate it, or set gate.force with a reason)",
                  file=sys.stderr, flush=True)
            return REFUSED
        files, size = copy(args.model, args.dest)
        print(f"gate: copied {files} files ({size / 2**30:.2f} GiB) from {args.model} to {args.dest}", flush=True)
        return 0
    except GateError as exc:
        print(f"gate: error: {exc}", file=sys.stderr, flush=True)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
