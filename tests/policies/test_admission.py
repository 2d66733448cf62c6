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
        ("GPU toleration without a GPU request", mutate(GOOD_POD, lambda o: container(o).pop("resources"))),
        ("toleration of every taint without a GPU request", mutate(GOOD_POD, lambda o: (
            container(o).pop("resources"), o["spec"].update({"tolerations": [{"operator": "Exists"}]})))),
        ("GPU toleration with GPUs asked by no container", mutate(GOOD_POD, lambda o: container(o)["resources"].update(
            {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}))),
        ("runtime class nvidia", mutate(GOOD_POD, lambda o: o["spec"].update({"runtimeClassName": "nvidia"}))),
        ("NVIDIA_VISIBLE_DEVICES=all", mutate(GOOD_POD, lambda o: container(o).update({"env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]}))),
        ("NVIDIA_DRIVER_CAPABILITIES in an init container", mutate(GOOD_POD, lambda o: o["spec"]["initContainers"][0].update(
            {"env": [{"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "all"}]}))),
    ],
    "infratech-priority-classes": [
        ("system-node-critical", mutate(GOOD_POD, lambda o: o["spec"].update({"priorityClassName": "system-node-critical"}))),
        ("system-cluster-critical", mutate(GOOD_POD, lambda o: o["spec"].update({"priorityClassName": "system-cluster-critical"}))),
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
        ("SYS_ADMIN added", mutate(GOOD_POD, lambda o: container(o)["securityContext"].update({"capabilities": {"add": ["SYS_ADMIN"]}}))),
        ("NET_RAW beside NET_BIND_SERVICE", mutate(GOOD_POD, lambda o: o["spec"]["initContainers"][0].update(
            {"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "NET_RAW"]}}}))),
        ("root user in a container", mutate(GOOD_POD, lambda o: container(o)["securityContext"].update({"runAsUser": 0}))),
        ("root user for the pod", mutate(GOOD_POD, lambda o: o["spec"].update({"securityContext": {"runAsUser": 0}}))),
        ("host port", mutate(GOOD_POD, lambda o: container(o).update({"ports": [{"containerPort": 8000, "hostPort": 8000}]}))),
        ("seccomp Unconfined for the pod", mutate(GOOD_POD, lambda o: o["spec"].update({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}))),
        ("seccomp Unconfined in a container", mutate(GOOD_POD, lambda o: container(o)["securityContext"].update(
            {"seccompProfile": {"type": "Unconfined"}}))),
        ("privileged ephemeral container", mutate(GOOD_POD, lambda o: o["spec"].update({"ephemeralContainers": [
            {"name": "debug", "image": "ghcr.io/infratech-souveraine/llm-train:0.1.0", "securityContext": {"privileged": True}}]}))),
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


GOOD_HARDENED = mutate(GOOD_POD, lambda o: (
    o["spec"].update({"securityContext": {"runAsUser": 10001, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}),
    container(o)["securityContext"].update({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, "runAsUser": 10001}),
    container(o).update({"ports": [{"containerPort": 8000}, {"containerPort": 8001, "hostPort": 0}]}),
    o["spec"].update({"priorityClassName": "infratech-training"}),
    container(o).update({"env": [{"name": "HF_HOME", "value": "/tmp/hf"}, {"name": "CUDA_VISIBLE_DEVICES_ORDER", "value": "PCI"}]}),
))


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_what_restricted_pod_security_allows_is_admitted(policy):
    """NET_BIND_SERVICE added back, a non-root user, RuntimeDefault seccomp, a container port with
    no host port, a non-system priority class, ordinary environment variables."""
    decision = decide(POLICIES[policy], GOOD_HARDENED)
    assert decision.admitted, decision.denied_by


def test_a_cpu_pod_without_the_gpu_toleration_is_admitted():
    cpu = mutate(GOOD_POD, lambda o: (container(o).pop("resources"), o["spec"].pop("tolerations")))
    assert decide(POLICIES["infratech-gpu-requests"], cpu).admitted
    other_taint = mutate(cpu, lambda o: o["spec"].update({"tolerations": [{"key": "infratech.io/pool", "operator": "Exists"}]}))
    assert decide(POLICIES["infratech-gpu-requests"], other_taint).admitted


EPHEMERAL = {"name": "debug", "image": "ghcr.io/infratech-souveraine/llm-train:0.1.0"}


@pytest.mark.parametrize("policy,why,ephemeral", [
    ("infratech-host-access", "privileged", {**EPHEMERAL, "securityContext": {"privileged": True}}),
    ("infratech-host-access", "SYS_PTRACE added", {**EPHEMERAL, "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}),
    ("infratech-host-access", "root", {**EPHEMERAL, "securityContext": {"runAsUser": 0}}),
    ("infratech-images", "unpinned image", {**EPHEMERAL, "image": "ghcr.io/infratech-souveraine/llm-train:latest"}),
    ("infratech-images", "foreign registry", {**EPHEMERAL, "image": "docker.io/library/busybox:1.36"}),
    ("infratech-gpu-requests", "NVIDIA_VISIBLE_DEVICES", {**EPHEMERAL, "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]}),
])
def test_an_ephemeral_container_added_to_a_running_pod_is_judged(policy, why, ephemeral):
    """kubectl debug adds an ephemeral container with an UPDATE of pods/ephemeralcontainers: the
    policy must match that subresource, or the container is never seen."""
    running = mutate(GOOD_POD, lambda o: o["spec"].update({"ephemeralContainers": [ephemeral]}))
    decision = decide(POLICIES[policy], running, operation="UPDATE", subresource="ephemeralcontainers")
    assert decision.applies and decision.denied_by, f"{policy}: {why} admitted"
    plain = mutate(GOOD_POD, lambda o: o["spec"].update({"ephemeralContainers": [EPHEMERAL]}))
    assert decide(POLICIES[policy], plain, operation="UPDATE", subresource="ephemeralcontainers").admitted
