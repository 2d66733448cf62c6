"""The admission policies' CEL, evaluated for real: each rule rejects its bad example and
accepts the good one; the platform applies every policy with its binding."""

from __future__ import annotations

import copy

import pytest
from cel_harness import decide

from infratech.policy.admission import POLICY_DIR, cel_list, documents

REGISTRIES = ("ghcr.io/infratech-souveraine/", "docker.io/vllm/", "vllm/")
POLICIES = {d["metadata"]["name"]: d for d in documents(REGISTRIES) if d["kind"] == "ValidatingAdmissionPolicy"}
BINDINGS = {d["metadata"]["name"]: d for d in documents(REGISTRIES) if d["kind"] == "ValidatingAdmissionPolicyBinding"}

GOOD_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "train-0",
        "namespace": "pretraining",
        "labels": {"kueue.x-k8s.io/queue-name": "pretraining", "infratech.io/data-classification": "internal"},
    },
    "spec": {
        "containers": [
            {
                "name": "node",
                "image": "ghcr.io/infratech-souveraine/llm-train:0.1.0",
                "resources": {"limits": {"nvidia.com/gpu": "8"}, "requests": {"nvidia.com/gpu": "8"}},
                "securityContext": {"privileged": False, "allowPrivilegeEscalation": False},
            }
        ],
        "initContainers": [{"name": "fetch", "image": "vllm/vllm-openai@sha256:" + "a" * 64}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}],
    },
}
GOOD_JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "eval", "labels": {"kueue.x-k8s.io/queue-name": "applied", "infratech.io/data-classification": "public"}},
    "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "ghcr.io/infratech-souveraine/llm-eval:0.1.0"}]}}},
}


def mutate(obj: dict, edit) -> dict:
    obj = copy.deepcopy(obj)
    edit(obj)
    return obj


def container(obj: dict) -> dict:
    return obj["spec"]["containers"][0]


# policy -> [(why the example is bad, the bad object)]
BAD = {
    "infratech-queue-name": [
        ("job without a queue label", mutate(GOOD_JOB, lambda o: o["metadata"]["labels"].pop("kueue.x-k8s.io/queue-name"))),
        ("job with an empty queue name", mutate(GOOD_JOB, lambda o: o["metadata"]["labels"].update({"kueue.x-k8s.io/queue-name": ""}))),
        ("bare pod without labels", mutate(GOOD_POD, lambda o: o["metadata"].pop("labels"))),
    ],
    "infratech-gpu-requests": [
        ("half a GPU", mutate(GOOD_POD, lambda o: container(o)["resources"].update({"limits": {"nvidia.com/gpu": "500m"}, "requests": {}}))),
        ("GPU asked in requests only", mutate(GOOD_POD, lambda o: container(o).update({"resources": {"requests": {"nvidia.com/gpu": "1"}}}))),
        ("requests differ from limits", mutate(GOOD_POD, lambda o: container(o)["resources"]["requests"].update({"nvidia.com/gpu": "4"}))),
        ("no GPU toleration", mutate(GOOD_POD, lambda o: o["spec"].pop("tolerations"))),
    ],
    "infratech-images": [
        ("foreign registry", mutate(GOOD_POD, lambda o: container(o).update({"image": "docker.io/library/python:3.12"}))),
        ("latest tag", mutate(GOOD_POD, lambda o: container(o).update({"image": "ghcr.io/infratech-souveraine/llm-train:latest"}))),
        ("no tag", mutate(GOOD_POD, lambda o: container(o).update({"image": "ghcr.io/infratech-souveraine/llm-train"}))),
        ("registry port but no tag", mutate(GOOD_POD, lambda o: container(o).update({"image": "vllm/x:5000/y"}))),
        ("init container unpinned", mutate(GOOD_POD, lambda o: o["spec"]["initContainers"][0].update({"image": "vllm/vllm-openai"}))),
    ],
    "infratech-host-access": [
        ("privileged container", mutate(GOOD_POD, lambda o: container(o)["securityContext"].update({"privileged": True}))),
        ("host network", mutate(GOOD_POD, lambda o: o["spec"].update({"hostNetwork": True}))),
        ("host PID", mutate(GOOD_POD, lambda o: o["spec"].update({"hostPID": True}))),
        ("hostPath volume", mutate(GOOD_POD, lambda o: o["spec"]["volumes"].append({"name": "root", "hostPath": {"path": "/"}}))),
    ],
    "infratech-data-classification": [
        ("no classification", mutate(GOOD_JOB, lambda o: o["metadata"]["labels"].pop("infratech.io/data-classification"))),
        ("unknown classification", mutate(GOOD_JOB, lambda o: o["metadata"]["labels"].update({"infratech.io/data-classification": "secret"}))),
        ("bare pod unclassified", mutate(GOOD_POD, lambda o: o["metadata"]["labels"].pop("infratech.io/data-classification"))),
    ],
}


def test_every_policy_has_bad_examples_and_a_binding():
    assert set(BAD) == set(POLICIES), "each policy needs bad examples here"
    assert set(BINDINGS) == set(POLICIES)
    for name, binding in BINDINGS.items():
        assert binding["spec"]["policyName"] == name
        assert binding["spec"]["validationActions"] == ["Deny"]
        assert POLICIES[name]["spec"]["failurePolicy"] == "Fail"


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("good", [GOOD_POD, GOOD_JOB], ids=["pod", "job"])
def test_good_workloads_are_admitted(policy, good):
    decision = decide(POLICIES[policy], good)
    assert decision.admitted, decision.denied_by


@pytest.mark.parametrize(
    "policy,why,bad",
    [pytest.param(p, why, obj, id=f"{p}-{why}") for p, cases in BAD.items() for why, obj in cases],
)
def test_bad_workloads_are_denied_with_the_rule_message(policy, why, bad):
    decision = decide(POLICIES[policy], bad)
    assert decision.applies and decision.denied_by, f"{why}: admitted"


def test_pods_owned_by_a_controller_are_judged_through_their_owner():
    owned = mutate(GOOD_POD, lambda o: (o["metadata"].pop("labels"), o["metadata"].update({"ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "eval", "uid": "u1", "controller": True}]})))
    assert not decide(POLICIES["infratech-queue-name"], owned).applies
    assert not decide(POLICIES["infratech-data-classification"], owned).applies
    # but their images, GPUs and host access are still checked
    owned["spec"]["hostNetwork"] = True
    assert not decide(POLICIES["infratech-host-access"], owned).admitted


def test_registries_come_from_the_stack_settings():
    policy = next(
        d for d in documents(("registry.internal.example/",))
        if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"] == "infratech-images"
    )
    on_mirror = mutate(GOOD_POD, lambda o: (container(o).update({"image": "registry.internal.example/llm-train:0.1.0"}), o["spec"].pop("initContainers")))
    assert decide(policy, on_mirror).admitted
    assert not decide(policy, GOOD_POD).admitted, "ghcr.io is no longer allowed"
    assert cel_list(["a/", "b/"]) == "['a/', 'b/']"
    assert "ALLOWED_REGISTRIES" in (POLICY_DIR / "images.yaml").read_text()


def test_the_platform_applies_every_policy_to_the_workload_namespaces(default_plan):
    vaps = default_plan.by_type("kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy")
    bindings = default_plan.by_type("kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding")
    assert sorted(r.inputs["metadata"]["name"] for r in vaps) == sorted(POLICIES)
    assert len(bindings) == len(POLICIES)
    images = next(r for r in vaps if r.inputs["metadata"]["name"] == "infratech-images")
    assert "'ghcr.io/infratech-souveraine/'" in images.inputs["spec"]["validations"][0]["expression"]
    labels = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"] for r in default_plan.by_type("kubernetes:core/v1:Namespace")}
    assert labels["pretraining"]["infratech.io/workloads"] == "true" and labels["serving"]["infratech.io/workloads"] == "true"
    assert "infratech.io/workloads" not in labels["gpu-operator"]
