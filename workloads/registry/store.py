"""The registry's store: content-addressed blobs and small JSON manifests, in object storage or a folder.

Layout under the store URL (``s3://BUCKET/PREFIX``, or a local directory for tests and dry runs)::

    blobs/sha256/<hex>                          every file, named by the sha256 of its bytes
    models/<org>/<name>/revisions/<commit>.json one manifest per published revision
    models/<org>/<name>/refs/main               the commit of the latest revision

A manifest lists each file of the revision (path -> sha256, size, git blob id) and is itself named by
a 40-hex commit id derived from its file list, so the same files published twice give the same
revision and a revision can never change under a name. Nothing here deletes or rewrites a blob.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from .. import objectstore
from ..errors import UserError
from ..files import HASH_CHUNK

REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MANIFEST_SCHEMA = "infratech-registry-revision-v1"


class CorruptObject(Exception):
    """A blob whose bytes do not hash to its name: never served."""


def check_repo(repo: str) -> str:
    if not REPO_RE.match(repo or "") or ".." in repo:
        raise UserError(f"repo {repo!r}: expected ORG/NAME (letters, digits, '-', '_', '.'; no '..')")
    return repo


def check_path(path: str) -> str:
    """A file path inside a repo: relative, no '.', '..' or empty segments, no backslashes."""
    parts = path.split("/")
    if (not path or path.startswith("/") or "\\" in path or "\x00" in path
            or any(p in ("", ".", "..") for p in parts)):
        raise UserError(f"file path {path!r}: expected a relative path without '.' or '..' segments")
    return path


def git_blob_id(path: Path) -> str:
    """The git blob id (sha1 of ``blob <size>\\0`` + bytes): what the Hub's tree API calls ``oid``."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def commit_id(files: dict[str, dict]) -> str:
    canon = json.dumps({k: v["sha256"] for k, v in sorted(files.items())}, sort_keys=True).encode()
    return hashlib.sha256(b"infratech-registry-commit\0" + canon).hexdigest()[:40]


class Store:
    """Keys under one root, whether ``s3://...`` (through ``workloads.objectstore``) or a directory."""

    def __init__(self, url: str):
        if not url:
            raise UserError("--store: give s3://BUCKET/PREFIX or a local directory")
        self.url = str(url).rstrip("/")
        self.remote = objectstore.is_remote(self.url)
        if self.remote:
            objectstore.split(self.url)  # fails early, naming the unset bucket alias

    def _uri(self, key: str) -> str:
        return objectstore.join(self.url, key)

    def _local(self, key: str) -> Path:
        return Path(self.url) / key

    def exists(self, key: str) -> bool:
        return objectstore.exists(self._uri(key)) if self.remote else self._local(key).is_file()

    def read(self, key: str) -> Optional[bytes]:
        if self.remote:
            uri = self._uri(key)
            return objectstore.read_bytes(uri) if objectstore.exists(uri) else None
        path = self._local(key)
        return path.read_bytes() if path.is_file() else None

    def write(self, key: str, data: bytes) -> None:
        if self.remote:
            objectstore.write_bytes(self._uri(key), data)
            return
        path = self._local(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def put_file(self, key: str, src: Path) -> None:
        if self.remote:
            objectstore.upload(src, self._uri(key))
            return
        path = self._local(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
        shutil.copyfile(src, tmp)
        os.replace(tmp, path)

    # -- blobs -----------------------------------------------------------------------------------
    @staticmethod
    def blob_key(sha256: str) -> str:
        if not SHA256_RE.match(sha256):
            raise UserError(f"sha256 {sha256!r}: expected 64 lowercase hex digits")
        return f"blobs/sha256/{sha256}"

    def put_blob(self, src: Path, sha256: str) -> bool:
        """Store ``src`` under its digest unless already there; True when uploaded."""
        key = self.blob_key(sha256)
        if self.exists(key):
            return False
        self.put_file(key, src)
        return True

    def verified_blob(self, sha256: str, size: int, spool_dir: Optional[str] = None) -> Path:
        """A local file holding the blob, checked against its digest and size (CorruptObject if not).

        A local store is hashed in place; an ``s3://`` store is downloaded to a temporary file,
        which the caller removes when it is not inside the store."""
        key = self.blob_key(sha256)
        digest = hashlib.sha256()
        if self.remote:  # one pass: streamed from the store into the spool file, hashed on the way
            fd, tmp = tempfile.mkstemp(prefix="blob-", dir=spool_dir)
            path = Path(tmp)
            try:
                bucket, obj = objectstore.split(self._uri(key))
                body = objectstore.client().get_object(Bucket=bucket, Key=obj)["Body"]
            except Exception as exc:  # botocore NoSuchKey, or the local mapping's missing file
                os.close(fd)
                path.unlink(missing_ok=True)
                raise CorruptObject(f"blob {sha256} cannot be read from the store: {exc}") from None
            with os.fdopen(fd, "wb") as out:
                while chunk := body.read(HASH_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            body.close()
        else:
            path = self._local(key)
            if not path.is_file():
                raise CorruptObject(f"blob {sha256} is missing from the store")
            with open(path, "rb") as fh:
                while chunk := fh.read(HASH_CHUNK):
                    digest.update(chunk)
        actual_size = path.stat().st_size
        if digest.hexdigest() != sha256 or actual_size != size:
            if self.remote:
                path.unlink(missing_ok=True)
            raise CorruptObject(f"blob {sha256}: the stored bytes hash to {digest.hexdigest()} "
                                f"({actual_size} bytes, {size} expected)")
        return path

    # -- revisions -------------------------------------------------------------------------------
    @staticmethod
    def _model(repo: str) -> str:
        return f"models/{check_repo(repo)}"

    def manifest(self, repo: str, commit: str) -> Optional[dict]:
        if not COMMIT_RE.match(commit):
            return None
        raw = self.read(f"{self._model(repo)}/revisions/{commit}.json")
        return None if raw is None else json.loads(raw)

    def resolve(self, repo: str, revision: str) -> Optional[str]:
        """A commit id for a branch name (``main``) or a commit; None when unknown."""
        if COMMIT_RE.match(revision):
            return revision if self.exists(f"{self._model(repo)}/revisions/{revision}.json") else None
        if revision != "main":
            return None
        raw = self.read(f"{self._model(repo)}/refs/main")
        return raw.decode().strip() if raw else None

    def has_repo(self, repo: str) -> bool:
        return self.exists(f"{self._model(repo)}/refs/main")

    def put_revision(self, repo: str, manifest: dict) -> None:
        """The manifest, then the ref: a reader never sees a ref to a revision that is not there."""
        model = self._model(repo)
        self.write(f"{model}/revisions/{manifest['commit']}.json",
                   (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
        self.write(f"{model}/refs/main", (manifest["commit"] + "\n").encode())
