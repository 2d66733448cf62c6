"""Build times, sizes and reproducibility of the workload images (docs/benchmarks.md, docs/images.md).

    sudo .venv/bin/python benchmarks/images_build.py                # warm: what is cached stays
    sudo .venv/bin/python benchmarks/images_build.py --reproduce    # then drop every image, rebuild
                                                                    # from the cached root filesystem,
                                                                    # compare each layer's digest

Prints, per image: size (uncompressed layers), the build's wall time, and with --reproduce the
layers that differ between the two builds (none expected).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infratech.images import build, sbom, spec  # noqa: E402

OUT = ROOT / "build" / "images"


def build_all() -> tuple[float, dict]:
    t = time.monotonic()
    result = build.build(list(spec.IMAGES), "cpu", ROOT, OUT, log=lambda m: print(f"  {m}", flush=True))
    return time.monotonic() - t, result


def layers(ref: str) -> list[str]:
    return [layer["digest"] for layer in sbom.manifest(ref)["layers"]]


def drop_images() -> None:
    """Every image this project built (base, venv and final), so the next build redoes them all."""
    names = subprocess.run(["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"], capture_output=True, text=True).stdout
    for ref in sorted({n for n in names.split() if n.startswith(spec.LOCAL)}, key=lambda r: "base" in r):
        subprocess.run(["buildah", "rmi", "--force", ref], capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reproduce", action="store_true", help="rebuild every layer and compare digests")
    args = ap.parse_args()
    seconds, first = build_all()
    print(f"build: {seconds:.0f} s")
    for key, entry in first["images"].items():
        print(f"{key:16} {entry['size'] / 1e6:8.0f} MB  {len(layers(entry['ref']))} layers  {entry['digest']}")
    if not args.reproduce:
        return 0
    before = {key: layers(e["ref"]) for key, e in first["images"].items()}
    drop_images()
    seconds, second = build_all()
    print(f"rebuild of every layer from the cached root filesystem: {seconds:.0f} s")
    differ = 0
    for key, entry in second["images"].items():
        after = layers(entry["ref"])
        same = [a == b for a, b in zip(before[key], after)]
        differ += same.count(False)
        print(f"{key:16} digest {'same' if entry['digest'] == first['images'][key]['digest'] else 'DIFFERS'}; "
              f"layers same: {json.dumps(same)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
