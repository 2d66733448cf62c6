"""What a build produced (build/images/images.lock), the charts' values that pin it, and
``infratech images push STACK``: a copy of every built image to the stack's registry
(``platform.image_registry``) with skopeo, digests preserved, so the cluster pulls by digest
exactly the bytes that were built and tested here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from . import spec

# what `make images` writes, relative to the project's root (build.py); `infratech submit` and
# `infratech images push` read it there unless told another path
DEFAULT_LOCK = Path("build") / "images" / "images.lock"
# where the project publishes its images (abroad: GitHub's registry), the charts' default
# repositories; a stack with platform.image_registry pulls from its own registry instead
PUBLIC_REGISTRY = f"ghcr.io/{spec.NAMESPACE}"
# chart -> (the image it runs, values key of the image); llm-serve's init step and server both
# run the serving image (workloads.serve)
CHARTS = {
    "llm-train": [("llm-train", "image")],
    "llm-eval": [("llm-eval", "image")],
    "llm-serve": [("llm-serve", "image")],
}


class ImagesLockError(ValueError):
    """images.lock is missing or malformed, or lacks an image a chart needs."""


def make_images(variant: str) -> str:
    """The command that builds ``variant`` and writes images.lock."""
    return "sudo make images" + ("" if variant == "cpu" else f" VARIANT={variant}")


def read_lock(path: Path) -> dict:
    if not path.is_file():
        raise ImagesLockError(f"{path}: no such file; `make images` builds the images and writes it")
    try:
        data = json.loads(path.read_text())
        images = data["images"]
        for key, entry in images.items():
            for field in ("image", "variant", "ref", "digest"):
                if not isinstance(entry.get(field), str):
                    raise ImagesLockError(f"{path}: images.{key}.{field}: missing or not a string")
            if not entry["digest"].startswith("sha256:") or len(entry["digest"]) != 71:
                raise ImagesLockError(f"{path}: images.{key}.digest: not a sha256 digest: {entry['digest']!r}")
    except (json.JSONDecodeError, KeyError, AttributeError) as exc:
        raise ImagesLockError(f"{path}: not an images lock ({exc})") from None
    return data


def tag(version: str, variant: str) -> str:
    """The CUDA variant (what GPU nodes run) carries the plain version, the CPU variant ``-cpu``."""
    return version if variant == "cuda" else f"{version}-{variant}"


def values_for(chart: str, lock: dict, registry: str, variant: str, path: Path = DEFAULT_LOCK) -> dict:
    """The values that pin ``chart`` to the images of ``lock`` (read from ``path``) in ``registry``,
    by digest; an image the lock lacks is an error naming the file, the image and the build."""
    values: dict = {}
    for image, key in CHARTS[chart]:
        entry = lock["images"].get(f"{image}:{variant}")
        if entry is None:
            raise ImagesLockError(f"{path} has no image {image}:{variant} (chart {chart}); "
                                  f"build it with `{make_images(variant)}`")
        values[key] = {"repository": f"{registry}/{image}", "digest": entry["digest"]}
    return values


def chart_values(lock: dict, registry: str, variant: str, partial: bool = False) -> dict[str, dict]:
    """Values that pin each chart to the images of ``lock`` in ``registry``, by digest; with
    ``partial``, the charts whose images were not all built are left out instead of refused."""
    out: dict[str, dict] = {}
    for chart, uses in CHARTS.items():
        if partial and any(f"{image}:{variant}" not in lock["images"] for image, _ in uses):
            continue
        out[chart] = values_for(chart, lock, registry, variant)
    return out


def record(path: Path, entry: dict) -> dict:
    """Add (or replace) one built image in the images lock at ``path``; returns the whole lock."""
    data = json.loads(path.read_text()) if path.is_file() else {"images": {}}
    data["images"][f"{entry['image']}:{entry['variant']}"] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data


def write_values(lock: dict, registry: str, variant: str, folder: Path, partial: bool = False) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for chart, values in chart_values(lock, registry, variant, partial).items():
        path = folder / f"values-{chart}-{variant}.yaml"
        path.write_text(f"# pins {chart} to the images of build/images/images.lock in {registry}\n"
                        + yaml.safe_dump(values, sort_keys=True))
        paths.append(path)
    return paths


def push(lock: dict, registry: str, version: str, tls_verify: bool = True, run=subprocess.run) -> list[str]:
    """Copy every image of ``lock`` to ``registry`` (skopeo, digests preserved); returns the references."""
    if shutil.which("skopeo") is None:
        raise FileNotFoundError("skopeo is not installed (apt-get install skopeo)")
    pushed = []
    for entry in lock["images"].values():
        dest = f"{registry}/{entry['image']}:{tag(version, entry['variant'])}"
        proc = run(["skopeo", "copy", "--quiet", "--preserve-digests", f"--dest-tls-verify={str(tls_verify).lower()}",
                    f"containers-storage:{entry['ref']}", f"docker://{dest}"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"skopeo copy to {dest} failed: {proc.stderr.strip()[-1500:]}")
        pushed.append(f"{registry}/{entry['image']}@{entry['digest']}")
    return pushed
