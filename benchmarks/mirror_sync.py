"""`infratech mirror sync` against plain `skopeo copy` of the same images on loopback: the overhead ratio.

    python benchmarks/mirror_sync.py                              # print the section
    python benchmarks/mirror_sync.py --out docs/benchmarks.md     # also rewrite its section

One run: OCI layouts of every image of the stack (the test's writer, tests/infratech/test_mirror_sync.py,
each with an incompressible layer of --mib MiB; the Prometheus image with two architectures), two
Debian docker-registry servers on 127.0.0.1 with empty storage, then (1) `infratech mirror sync
--from-dir` into the first, timed from outside (the offline plan included), (2) the same images by
a plain loop of `skopeo copy --all --preserve-digests` into the second, (3) the sync rerun (nothing
to copy). The order of (1) and (2) alternates over --rounds, fresh registries each round.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "infratech")]

import yaml  # noqa: E402

from infratech.cli.mirror import inventory, sync  # noqa: E402
from infratech.cli.plan import record  # noqa: E402
from infratech.cli.stacks import find_project, stack_config  # noqa: E402
from test_mirror_sync import MULTI_ARCH, write_layout  # noqa: E402

from docsection import write_section  # noqa: E402  beside this file

BEGIN, END = "<!-- mirror_sync:begin (written by benchmarks/mirror_sync.py --out) -->", "<!-- mirror_sync:end -->"


def _registry(where: Path, port: int) -> subprocess.Popen:
    config = where / f"registry-{port}.yml"
    config.write_text(yaml.safe_dump({"version": 0.1, "log": {"level": "error"},
                                      "storage": {"filesystem": {"rootdirectory": str(where / f"storage-{port}")}},
                                      "http": {"addr": f"127.0.0.1:{port}"}}))
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while sync.reachable(f"127.0.0.1:{port}", 1.0) is not None:
        if proc.poll() is not None:
            raise SystemExit("docker-registry did not start")
        time.sleep(0.2)
    return proc


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tool(stack: str, source: Path, to: str, lock: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "infratech.cli", "mirror", "sync", stack, "--to", to, "--from-dir", str(source),
                    "--lock", str(lock), "--no-tls-verify"], cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def _list(stack: str) -> float:
    """The command's fixed part: interpreter start, imports, the offline plan (what `mirror list` runs too)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "infratech.cli", "mirror", "list", stack, "--json"], cwd=ROOT, check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def _plain(images: list[str], source: Path, to: str) -> float:
    start = time.perf_counter()
    for ref in images:
        subprocess.run(["skopeo", "copy", "--all", "--preserve-digests", "--quiet", "--dest-tls-verify=false",
                        sync.source(ref, source), sync.destination(ref, to, None)], check=True, capture_output=True)
    return time.perf_counter() - start


def measure(args) -> dict:
    project = find_project(ROOT)
    cfg = stack_config(project, args.stack)
    images = [i.ref for i in inventory.collect(record(project, args.stack), project.root, cfg.provider).images]
    tool, plain, rerun, fixed = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "layouts"
        for i, ref in enumerate(images):
            write_layout(source, ref, multi_arch=(ref == MULTI_ARCH), payload=os.urandom(args.mib << 20))
        size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
        for r in range(args.rounds):
            ports = (_port(), _port())
            procs = [_registry(work, p) for p in ports]
            try:
                a, b = (f"127.0.0.1:{p}/mirror" for p in ports)
                lock = work / f"lock-{r}.json"
                if r % 2 == 0:
                    tool.append(_tool(args.stack, source, a, lock))
                    plain.append(_plain(images, source, b))
                else:
                    plain.append(_plain(images, source, b))
                    tool.append(_tool(args.stack, source, a, lock))
                rerun.append(_tool(args.stack, source, a, lock))
                fixed.append(_list(args.stack))
            finally:
                for proc in procs:
                    proc.terminate()
                    proc.wait(10)
                for p in ports:
                    shutil.rmtree(work / f"storage-{p}", ignore_errors=True)
    return {"images": len(images), "bytes": size, "tool": tool, "plain": plain, "rerun": rerun, "fixed": fixed, "args": vars(args)}


def report(res: dict) -> str:
    a = res["args"]
    med = {k: statistics.median(res[k]) for k in ("tool", "plain", "rerun", "fixed")}
    mib = res["bytes"] / (1 << 20)
    skopeo = subprocess.run(["skopeo", "--version"], capture_output=True, text=True).stdout.strip()
    lines = [BEGIN, "## Mirror sync: overhead over plain skopeo", "",
             "```sh", f"python benchmarks/mirror_sync.py --stack {a['stack']} --mib {a['mib']} --rounds {a['rounds']} --out FILE",
             "```", "",
             f"Machine: {os.cpu_count()} CPUs (shared), {skopeo}, Debian docker-registry (distribution 2.8) on 127.0.0.1 "
             f"over plain HTTP; {time.strftime('%Y-%m-%d')}. {res['images']} images of stack {a['stack']} "
             f"(one with two architectures), {mib:.0f} MiB of OCI layouts in all, each layer {a['mib']} MiB of random bytes. "
             f"Medians of {a['rounds']} rounds, fresh registries each round, order alternating.", "",
             "| copy | median (s) | all rounds (s) | MiB/s |", "|---|---:|---:|---:|",
             f"| `infratech mirror sync` (whole command: offline plan, per-image lock, digest file) | {med['tool']:.1f} | "
             f"{', '.join(f'{t:.1f}' for t in res['tool'])} | {mib / med['tool']:.0f} |",
             f"| plain `skopeo copy --all --preserve-digests` loop | {med['plain']:.1f} | "
             f"{', '.join(f'{t:.1f}' for t in res['plain'])} | {mib / med['plain']:.0f} |",
             f"| `infratech mirror sync` rerun (nothing to copy: one manifest read per image) | {med['rerun']:.1f} | "
             f"{', '.join(f'{t:.1f}' for t in res['rerun'])} | |",
             f"| the fixed part alone (`infratech mirror list --json`: interpreter, imports, offline plan) | {med['fixed']:.1f} | "
             f"{', '.join(f'{t:.1f}' for t in res['fixed'])} | |", "",
             f"**Overhead ratio tool / plain skopeo: {med['tool'] / med['plain']:.2f}**; without the fixed part "
             f"{(med['tool'] - med['fixed']) / med['plain']:.2f}.", "", END]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stack", default="ovh-gra11")
    p.add_argument("--mib", type=int, default=8, help="MiB of random bytes in each image's layer (default 8)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, order alternating (default 3)")
    p.add_argument("--out", type=Path, help="rewrite this file's mirror_sync section")
    args = p.parse_args(argv)
    section = report(measure(args))
    print(section)
    if args.out:
        write_section(args.out, section, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
