"""S3-compatible object storage (OVHcloud, Scaleway), configured only from the environment.

In the cluster, each team namespace has a Secret ``object-store`` (written by
``infratech.program.platform.tenancy``) that jobs load with ``envFrom``::

    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   credentials
    AWS_ENDPOINT_URL                           e.g. https://s3.gra.io.cloud.ovh.net
    AWS_REGION                                 e.g. gra
    S3_BUCKET_DATASETS, S3_BUCKET_CHECKPOINTS  the stack's buckets

A location is either a local path or ``s3://BUCKET/KEY``. ``s3://@datasets/...`` and
``s3://@checkpoints/...`` name the platform's buckets without knowing their names, so a recipe
written once works in every team namespace.

``AWS_ENDPOINT_URL=file:///some/dir`` maps buckets to folders of that directory (no credentials
needed): the same code paths run offline, for dry runs and tests.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import Callable, Iterator, Optional

from .errors import UserError

ENV_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
ENV_ENDPOINT = "AWS_ENDPOINT_URL"
ENV_REGION = "AWS_REGION"
BUCKET_ALIASES = {"@datasets": "S3_BUCKET_DATASETS", "@checkpoints": "S3_BUCKET_CHECKPOINTS"}

# Replaced by tests with a fake; everything below goes through ``client()``.
_client_factory: Optional[Callable[[], object]] = None


def is_remote(location: str | os.PathLike) -> bool:
    return str(location).startswith("s3://")


def split(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``, resolving ``@datasets`` aliases."""
    if not is_remote(uri):
        raise UserError(f"not an object-store location: {uri!r} (expected s3://BUCKET/KEY)")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if bucket in BUCKET_ALIASES:
        var = BUCKET_ALIASES[bucket]
        resolved = os.environ.get(var)
        if not resolved:
            raise UserError(f"{uri}: {bucket} names the bucket in ${var}, which is not set "
                            "(it comes from the namespace's object-store Secret)")
        bucket = resolved
    if not bucket:
        raise UserError(f"{uri}: no bucket name")
    return bucket, key


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


class LocalDirClient:
    """The boto3 calls used here, answered from ``<root>/<bucket>/<key>`` files."""

    def __init__(self, root: str):
        self.root = Path(root)

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def list_objects_v2(self, Bucket, Prefix, ContinuationToken=None):
        base = self.root / Bucket
        found = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        keys = [p.relative_to(base).as_posix() for p in found]
        return {"Contents": [{"Key": k, "Size": (base / k).stat().st_size} for k in keys if k.startswith(Prefix)],
                "IsTruncated": False}

    def head_object(self, Bucket, Key):
        path = self._path(Bucket, Key)
        if not path.is_file():
            raise KeyError(Key)
        return {"ContentLength": path.stat().st_size}

    def get_object(self, Bucket, Key):
        return {"Body": open(self._path(Bucket, Key), "rb")}

    def put_object(self, Bucket, Key, Body):
        path = self._path(Bucket, Key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(Body))

    def upload_file(self, Filename, Bucket, Key):
        self.put_object(Bucket, Key, Path(Filename).read_bytes())

    def download_file(self, Bucket, Key, Filename):
        Path(Filename).write_bytes(self._path(Bucket, Key).read_bytes())


def client():
    """A boto3 S3 client for the platform's endpoint; path-style addressing, retries on."""
    if _client_factory is not None:
        return _client_factory()
    endpoint = os.environ.get(ENV_ENDPOINT, "")
    if endpoint.startswith("file://"):
        return LocalDirClient(endpoint[len("file://"):])
    missing = [v for v in (*ENV_CREDENTIALS, ENV_ENDPOINT) if not os.environ.get(v)]
    if missing:
        raise UserError("object storage needs " + ", ".join(f"${v}" for v in missing)
                        + " (from the namespace's object-store Secret, or exported by hand)")
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ[ENV_ENDPOINT],
        region_name=os.environ.get(ENV_REGION) or None,
        config=Config(retries={"max_attempts": 10, "mode": "standard"}, s3={"addressing_style": "path"}),
    )


def list_objects(uri: str) -> Iterator[tuple[str, int]]:
    """``(s3://bucket/key, size)`` for every object under a prefix, in key order."""
    bucket, prefix = split(uri)
    s3 = client()
    token = None
    while True:
        kwargs = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = s3.list_objects_v2(**kwargs)
        for obj in page.get("Contents", []):
            yield f"s3://{bucket}/{obj['Key']}", int(obj["Size"])
        if not page.get("IsTruncated"):
            return
        token = page["NextContinuationToken"]


def exists(uri: str) -> bool:
    bucket, key = split(uri)
    try:
        client().head_object(Bucket=bucket, Key=key)
        return True
    except Exception as exc:  # botocore ClientError 404, or the fake's KeyError
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound") or isinstance(exc, KeyError):
            return False
        raise


def read_bytes(uri: str) -> bytes:
    bucket, key = split(uri)
    return client().get_object(Bucket=bucket, Key=key)["Body"].read()


def write_bytes(uri: str, data: bytes) -> None:
    bucket, key = split(uri)
    client().put_object(Bucket=bucket, Key=key, Body=data)


def iter_lines(uri: str) -> Iterator[str]:
    """Stream a text object line by line (``.gz`` decompressed on the fly): memory stays bounded."""
    bucket, key = split(uri)
    body = client().get_object(Bucket=bucket, Key=key)["Body"]
    raw = gzip.GzipFile(fileobj=body) if key.endswith(".gz") else body
    for line in io.TextIOWrapper(raw, encoding="utf-8", newline=""):
        yield line


def download(uri: str, dest: str | os.PathLike) -> Path:
    """Download one object to ``dest`` (written beside it, renamed when complete)."""
    bucket, key = split(uri)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.part")  # ranks of one node may fetch the same object
    client().download_file(bucket, key, str(tmp))
    tmp.replace(dest)
    return dest


def upload(src: str | os.PathLike, uri: str) -> None:
    bucket, key = split(uri)
    client().upload_file(str(src), bucket, key)


def upload_dir(src: str | os.PathLike, uri: str, last: tuple[str, ...] = ()) -> int:
    """Upload every file under ``src``; names in ``last`` go after the rest (commit markers)."""
    src = Path(src)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name in last)
    for path in files:
        upload(path, join(uri, path.relative_to(src).as_posix()))
    return len(files)


def download_dir(uri: str, dest: str | os.PathLike) -> int:
    dest = Path(dest)
    prefix = uri.rstrip("/") + "/"
    bucket, key_prefix = split(prefix)
    count = 0
    for obj_uri, _size in list_objects(prefix):
        rel = obj_uri[len(f"s3://{bucket}/") + len(key_prefix):]
        download(obj_uri, dest / rel)
        count += 1
    return count
