"""Model files from object storage into a local cache, each checked against its sha256.

The digests come from the ``promotion.json`` published with the model (``python -m workloads.gate
publish``): the gate recorded every model file's sha256 when it judged them, so a file that was
corrupted in transit, or replaced after the verdict, is refused rather than served. The cache is
keyed by the model's fingerprint: a second start (a restarted pod on the same node, a rerun)
re-hashes what is there and downloads nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from .. import objectstore
from ..errors import UserError
from ..files import sha256_file
from ..eval import RESULTS_DIR
from ..gate import PROMOTION_FILE


class ChecksumError(UserError):
    pass


def read_verdict(uri: str) -> tuple[bytes, dict]:
    """The ``promotion.json`` published with the model at ``uri``: its bytes and its content."""
    verdict_uri = objectstore.join(uri, PROMOTION_FILE)
    if not objectstore.exists(verdict_uri):
        raise UserError(f"{uri}: no {PROMOTION_FILE}; without the digests the gate records, the files cannot be "
                        "verified (evaluate it with `python -m workloads.eval --gate`, or publish it with "
                        "`python -m workloads.gate publish`, which runs after the gate)")
    raw = objectstore.read_bytes(verdict_uri)
    try:
        verdict = json.loads(raw)
        verdict["model"]["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"{verdict_uri}: not a verdict of `python -m workloads.gate` (no model.files with the "
                        "sha256 of each file)") from None
    return raw, verdict


def fetch(uri: str, cache_dir: str | Path, log: Callable[[str], None] = print, exact: bool = False) -> Path:
    """Local directory holding the verified files of the model at ``uri`` (an ``s3://`` prefix):
    ``cache_dir/<fingerprint>``, or ``cache_dir`` itself with ``exact``."""
    raw, verdict = read_verdict(uri)
    files = verdict["model"]["files"]
    dest = Path(cache_dir) if exact else Path(cache_dir) / verdict["model"]["fingerprint"][:16]
    dest.mkdir(parents=True, exist_ok=True)
    fetched = reused = 0
    for name, meta in sorted(files.items()):
        path = dest / name
        if path.is_file() and path.stat().st_size == meta["bytes"] and sha256_file(path) == meta["sha256"]:
            reused += 1
            continue
        objectstore.download(objectstore.join(uri, name), path)
        actual = sha256_file(path)
        if actual != meta["sha256"]:
            path.unlink()
            raise ChecksumError(f"{uri}/{name}: sha256 {actual} but the gate recorded {meta['sha256']} "
                                "(corrupted, or changed after the verdict); not served")
        fetched += 1
    # the evidence comes along (the verdict last), so the cache can be judged like any model directory
    for name in (f"{RESULTS_DIR}/results.json", f"{RESULTS_DIR}/report.md"):
        if objectstore.exists(objectstore.join(uri, name)):
            objectstore.download(objectstore.join(uri, name), dest / name)
    (dest / PROMOTION_FILE).write_bytes(raw)
    log(f"fetch: {uri} -> {dest} ({fetched} downloaded, {reused} already cached, all sha256-verified)")
    return dest
