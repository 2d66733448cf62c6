"""The training image of a stack with a registry of its own defaults to that registry (OVHcloud's
Managed Private Registry or Scaleway's Container Registry), in the config and in the planned
training runtime; the plan's images-in-stack-registry rule then passes."""

from __future__ import annotations

import pytest

from infratech.config import Platform
from infratech.images import spec
from infratech.policy.evaluate import evaluate
from infratech.policy.evaluate import resources_from_recording
from infratech.policy.model import Settings, Stack, walk

# OVHcloud Managed Private Registry (Harbor): <id>.<region>.container-registry.ovh.net/<project>
OVH_MPR = "x1y2z3ab.gra7.container-registry.ovh.net/infratech-souveraine"
RUNTIME = "kubernetes:trainer.kubeflow.org/v1alpha1:ClusterTrainingRuntime"


@pytest.mark.parametrize("registry", [OVH_MPR, "rg.fr-par.scw.cloud/infratech-souveraine"])
def test_the_training_image_defaults_to_the_stacks_own_registry(registry):
    assert Platform(image_registry=registry).training_image == f"{registry}/llm-train:{spec.VERSION}"
    assert Platform(image_registry=registry, training_image="r.example.fr/t:1").training_image == "r.example.fr/t:1"
    assert Platform().training_image.startswith("ghcr.io/"), "no registry of the stack's own: where the project publishes"


def runtime_images(rec) -> set[str]:
    return {v for r in rec.resources if r.type == RUNTIME for path, v in walk(r.inputs)
            if isinstance(v, str) and (path == "image" or path.endswith(".image"))}


def verdict(rec):
    stack = Stack(resources=resources_from_recording(rec.resources), outputs=dict(rec.outputs), settings=Settings())
    return next(v for v in evaluate(stack) if v.rule.id == "images-in-stack-registry")


def test_an_ovh_stack_with_a_managed_private_registry_trains_from_it(variant):
    def edit(config):
        config.setdefault("infratech:platform", {})["image_registry"] = OVH_MPR
        config.setdefault("infratech:policy", {})["allowed_registries"] = [
            f"{OVH_MPR}/", "ghcr.io/infratech-souveraine/", "docker.io/vllm/", "vllm/"]

    rec = variant("ovh-gra11", edit)
    assert runtime_images(rec) == {f"{OVH_MPR}/llm-train:{spec.VERSION}"}
    assert rec.outputs["image_registry"] == OVH_MPR
    assert verdict(rec).violations == ()


def test_without_a_registry_of_its_own_the_plan_names_the_registry_abroad(default_plan):
    assert runtime_images(default_plan) == {f"ghcr.io/infratech-souveraine/llm-train:{spec.VERSION}"}
    (message,) = verdict(default_plan).violations
    assert "pulled from ghcr.io" in message and "no registry of its own" in message
