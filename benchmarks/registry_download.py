"""Download throughput of one model file through the registry against reading the store directly.

A revision with one ``model.safetensors`` of ``--size-mb`` random bytes (default 1024) is written
into a store at ``s3://bench/registry`` whose endpoint is ``AWS_ENDPOINT_URL=file://DIR`` (the
object-store client's local mapping: the same code path as a provider's S3, without a network).
Then, alternately, ``--repeats`` times each:

- *direct*: ``workloads.objectstore.download`` of the blob (what a job does when it reads the
  store itself);
- *registry*: ``huggingface_hub.hf_hub_download`` from ``python -m workloads.registry serve``
  (its own process) on 127.0.0.1, into an empty cache: the server spools the blob, checks its
  sha256, then sends it.

Interleaved in one run, so the machine's other load weighs on both alike; the figure is the ratio
of the medians (registry / direct).

    python benchmarks/registry_download.py                          # print only
    python benchmarks/registry_download.py --out docs/benchmarks.md # also rewrite its section
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from docsection import write_section  # beside this file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BEGIN, END = "<!-- registry_download:begin (written by benchmarks/registry_download.py --out) -->", \
    "<!-- registry_download:end -->"
REPO = "bench/model"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(args) -> dict:
    from workloads import objectstore
    from workloads.registry.store import MANIFEST_SCHEMA, Store, commit_id, git_blob_id

    work = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    os.environ["AWS_ENDPOINT_URL"] = f"file://{work / 's3'}"
    try:
        src = work / "model.safetensors"
        digest = hashlib.sha256()
        with open(src, "wb") as fh:
            for _ in range(args.size_mb):
                chunk = os.urandom(1 << 20)
                digest.update(chunk)
                fh.write(chunk)
        sha = digest.hexdigest()
        store = Store("s3://bench/registry")
        store.put_blob(src, sha)
        files = {"model.safetensors": {"sha256": sha, "size": src.stat().st_size, "oid": git_blob_id(src)}}
        store.put_revision(REPO, {"schema": MANIFEST_SCHEMA, "repo": REPO, "commit": commit_id(files),
                                  "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                  "files": files})
        src.unlink()
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen([sys.executable, "-m", "workloads.registry", "serve", "--store",
                                   "s3://bench/registry", "--port", str(port)], cwd=ROOT, env=env,
                                  stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            import huggingface_hub as hf

            times = {"direct": [], "registry": []}
            for i in range(args.repeats):
                dest = work / f"direct-{i}"
                t = time.perf_counter()
                objectstore.download(f"s3://bench/registry/blobs/sha256/{sha}", dest)
                times["direct"].append(time.perf_counter() - t)
                dest.unlink()
                cache = work / f"cache-{i}"
                t = time.perf_counter()
                path = hf.hf_hub_download(REPO, "model.safetensors", endpoint=f"http://127.0.0.1:{port}",
                                          cache_dir=cache)
                times["registry"].append(time.perf_counter() - t)
                assert Path(path).stat().st_size == files["model.safetensors"]["size"]
                shutil.rmtree(cache)
        finally:
            server.terminate()
            server.wait(timeout=30)
        return {"times": times, "bytes": files["model.safetensors"]["size"], "hf": hf.__version__}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(res: dict) -> str:
    med = {k: statistics.median(v) for k, v in res["times"].items()}
    mb = res["bytes"] / 1e6
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    lines = [BEGIN, "## Registry download throughput", "",
             "One model file through the registry (`huggingface_hub.hf_hub_download` from "
             "`python -m workloads.registry serve`) against reading the store directly "
             "(`workloads.objectstore.download`), interleaved in one run.", "",
             "```sh", ".venv/bin/python benchmarks/registry_download.py --out docs/benchmarks.md", "```", "",
             f"Machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Linux {platform.release()}; "
             f"CPython {platform.python_version()}, huggingface_hub {res['hf']}; commit {commit}. "
             f"Store: `s3://` mapped to a local directory (`AWS_ENDPOINT_URL=file://`), no network.", "",
             "| path | runs | median (s) | MB/s | all runs (s) |", "|---|---:|---:|---:|---|"]
    for k in ("direct", "registry"):
        lines.append(f"| {k} | {len(res['times'][k])} | {med[k]:.2f} | {mb / med[k]:,.0f} | "
                     + ", ".join(f"{t:.2f}" for t in res["times"][k]) + " |")
    lines += ["", f"File: {mb:,.0f} MB. **Ratio registry / direct: {med['registry'] / med['direct']:.2f}.** The "
              "registry spools the blob, hashes it (a corrupted object is never served) and sends it over HTTP; "
              "the client writes it into its cache.", "", END]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (default 1024)")
    p.add_argument("--repeats", type=int, default=3, help="downloads of each kind (default 3)")
    p.add_argument("--out", type=Path, help="rewrite this file's registry_download section")
    args = p.parse_args(argv)
    section = report(measure(args))
    print(section)
    if args.out:
        write_section(args.out, section, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
