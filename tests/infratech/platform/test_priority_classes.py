"""Kueue WorkloadPriorityClasses: production above research above preemptible, valid against the
pinned Kueue CRD, named in the stack outputs that `infratech submit` checks job files against."""

from __future__ import annotations

import pytest
import upstream

WPC = "kubernetes:kueue.x-k8s.io/v1beta2:WorkloadPriorityClass"


def test_three_classes_in_order_of_precedence(default_plan):
    classes = {r.inputs["metadata"]["name"]: r.inputs for r in default_plan.by_type(WPC)}
    assert set(classes) == {"production", "research", "preemptible"}
    assert classes["production"]["value"] > classes["research"]["value"] > classes["preemptible"]["value"]
    assert all(c["description"] for c in classes.values())
    assert default_plan.outputs["priority_classes"] == ["production", "research", "preemptible"]


@pytest.mark.skipif(upstream.upstream_dir() is None, reason=upstream.skip_reason())
def test_classes_are_valid_against_the_pinned_crd(default_plan):
    for res in default_plan.by_type(WPC):
        obj = {k: v for k, v in res.inputs.items()}
        assert upstream.validate_custom_object(obj) == [], obj
        assert upstream.validate_custom_object({**obj, "spec": {"value": 1}}), "the CRD has no spec: value sits at the top"


def test_a_stack_without_kueue_has_no_classes(variant):
    rec = variant("ovh-gra11", lambda c: c.setdefault("infratech:platform", {}).update(kueue=False, trainer=False))
    assert rec.by_type(WPC) == [] and rec.outputs["priority_classes"] == []
