"""charts/llm-train/templates/trainjob-trainer.yaml: the TrainJob a training run is."""

from __future__ import annotations

import pytest
from chart_harness import (
    CHARTS_DIR,
    GPU_TOLERATION,
    one,
    rendered,
    runtime_spec_from,
    trainjob_pod,
)

from infratech.program.platform.storage import DATASETS_CLAIM

CI = CHARTS_DIR / "llm-train" / "ci"
SINGLE = CI / "01-single-gpu-values.yaml"
MULTI = CI / "02-multi-node-values.yaml"
PLAIN = CI / "03-plain-python-values.yaml"


def trainjob(*files, sets=()):
    return one(rendered("llm-train", *files, sets=sets), "TrainJob")


@pytest.fixture(scope="module")
def flavors(default_plan):
    """The ResourceFlavors the default stack declares: name -> spec."""
    return {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in default_plan.resources if r.type == "kubernetes:kueue.x-k8s.io/v1beta2:ResourceFlavor"}


def test_should_be_created_suspended_in_the_teams_queue():
    job = trainjob(SINGLE)
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "pretraining"
    assert job["metadata"]["namespace"] == "pretraining"


def test_should_run_on_the_platforms_runtime(default_plan):
    job = trainjob(SINGLE)
    assert job["spec"]["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime", "name": default_plan.outputs["training_runtime"]}


def test_should_ask_for_n_nodes_of_g_whole_gpus():
    trainer = trainjob(MULTI)["spec"]["trainer"]
    assert trainer["numNodes"] == 4
    assert trainer["numProcPerNode"] == 1
    res = trainer["resourcesPerNode"]
    assert res["limits"]["nvidia.com/gpu"] == res["requests"]["nvidia.com/gpu"] == "1"
    job = trainjob(SINGLE, sets=["nodes=2", "gpu.perNode=8"])["spec"]["trainer"]
    assert (job["numNodes"], job["numProcPerNode"], job["resourcesPerNode"]["limits"]["nvidia.com/gpu"]) == (2, 8, "8")


@pytest.mark.parametrize("scenario,model", [(SINGLE, "h100-80gb"), (PLAIN, "l40s")])
def test_gpu_placement_should_match_the_flavour(scenario, model, flavors):
    """Node selector and toleration equal the platform's ResourceFlavor for that model, so the
    pods land where Kueue admitted them and the GPU-requests policy sees the toleration."""
    pod = trainjob(scenario)["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == flavors[model]["nodeLabels"]
    assert pod["tolerations"] == flavors[model]["tolerations"] == [GPU_TOLERATION]


def test_should_mount_dev_shm_in_memory_once(default_plan):
    job = trainjob(MULTI)
    pod = trainjob_pod(job, runtime_spec_from(default_plan))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert len(volumes) == len(pod["spec"]["volumes"]), "a volume name twice"
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "128Gi"}
    mounts = {m["mountPath"]: m["name"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["/dev/shm"] == "dshm" and mounts["/scratch"] == "scratch"


def test_should_read_object_storage_credentials_from_the_teams_secret():
    env = {e["name"]: e for e in trainjob(SINGLE)["spec"]["trainer"]["env"]}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION", "S3_BUCKET_CHECKPOINTS", "S3_BUCKET_DATASETS"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "object-store", "key": key}
    assert env["CHECKPOINT_URI"]["value"] == "s3://@checkpoints/pretraining/tiny"
    assert env["TORCH_NCCL_ASYNC_ERROR_HANDLING"]["value"] == "1"
    assert env["NCCL_SOCKET_IFNAME"]["value"] == "^lo,docker"


def test_command_should_launch_the_recipe_with_its_restart_budget_and_checkpoints():
    command = trainjob(MULTI)["spec"]["trainer"]["command"]
    assert command == [
        "torchrun", "--max-restarts=5", "-m", "workloads.train", "--recipe", "llama_1b",
        "run.dir=/scratch/run", "checkpoint.upload=s3://@checkpoints/pretraining/llama-1b-run3",
        "data.path=s3://@datasets/packed/lucie-65k-seq4096",
        "checkpoint.every=500", "train.lr=3e-4", "train.steps=20000",
    ]


def test_command_should_follow_the_launcher_values():
    command = trainjob(PLAIN)["spec"]["trainer"]["command"]
    assert command[:5] == ["python", "-m", "workloads.train", "--recipe", "debug_tiny"]
    assert command[-1] == "--print-config"
    assert "run.dir=/scratch/tiny" in command


def test_should_label_the_priority_class_only_when_given():
    assert trainjob(MULTI)["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "research-high"
    assert "kueue.x-k8s.io/priority-class" not in trainjob(SINGLE)["metadata"]["labels"]


def test_should_prefer_the_digest_to_the_tag():
    assert trainjob(MULTI)["spec"]["trainer"]["image"] == "ghcr.io/infratech-souveraine/llm-train@sha256:" + "0f1e2d3c4b5a69788796a5b4c3d2e1f0" * 2
    assert trainjob(SINGLE)["spec"]["trainer"]["image"] == "ghcr.io/infratech-souveraine/llm-train:0.1.0"


def test_pods_should_carry_the_job_labels_and_the_scratch_claim(default_plan):
    pod = trainjob_pod(trainjob(PLAIN), runtime_spec_from(default_plan))
    assert pod["metadata"]["labels"]["infratech.io/job"] == "job-x"
    assert pod["metadata"]["labels"]["infratech.io/team"] == "applied"
    assert {"name": "scratch", "persistentVolumeClaim": {"claimName": "tiny-scratch"}} in pod["spec"]["volumes"]
    assert pod["spec"]["serviceAccountName"] == "jobs"


def test_should_set_a_deadline_only_when_asked():
    assert trainjob(MULTI)["spec"]["activeDeadlineSeconds"] == 604800
    assert "activeDeadlineSeconds" not in trainjob(SINGLE)["spec"]


def test_should_mount_the_teams_datasets_claim_read_only_when_asked(default_plan):
    """The claim the platform makes in every team namespace (storage.py), mounted read-only in the
    trainer container; without `datasets.claimName` there is no such volume."""
    pod = trainjob_pod(trainjob(MULTI), runtime_spec_from(default_plan))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["datasets"]["persistentVolumeClaim"] == {"claimName": DATASETS_CLAIM, "readOnly": True}
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["datasets"] == {"name": "datasets", "mountPath": "/datasets", "readOnly": True}
    single = trainjob_pod(trainjob(SINGLE), runtime_spec_from(default_plan))
    assert "datasets" not in {v["name"] for v in single["spec"]["volumes"]}
