"""charts/llm-eval: the evaluation Job (job-eval.yaml), its gate file (configmap-gate.yaml) and
the values it refuses (values.schema.json, validations.yaml)."""

from __future__ import annotations

import pytest
import yaml
from chart_harness import CHARTS_DIR, GPU_TOLERATION, one, render_error, rendered

CI = CHARTS_DIR / "llm-eval" / "ci"
GPU = CI / "01-gpu-values.yaml"
CPU = CI / "02-cpu-values.yaml"


def job(*files, sets=()):
    return one(rendered("llm-eval", *files, sets=sets), "Job")


def pod_spec(*files, sets=()):
    return job(*files, sets=sets)["spec"]["template"]["spec"]


def test_should_be_created_suspended_in_the_teams_queue():
    j = job(GPU)
    assert j["spec"]["suspend"] is True
    assert j["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "pretraining"
    assert "kueue.x-k8s.io/priority-class" not in j["metadata"]["labels"]
    assert job(CPU)["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "research-low"


def test_gpu_evaluation_should_tolerate_and_select_its_flavour():
    spec = pod_spec(GPU)
    assert spec["tolerations"] == [GPU_TOLERATION]
    assert spec["nodeSelector"] == {"infratech.io/gpu-model": "h100-80gb"}
    res = spec["containers"][0]["resources"]
    assert res["limits"]["nvidia.com/gpu"] == res["requests"]["nvidia.com/gpu"] == "1"


def test_cpu_evaluation_should_ask_for_no_gpu_and_no_gpu_node():
    spec = pod_spec(CPU)
    assert "tolerations" not in spec and "nodeSelector" not in spec
    res = spec["containers"][0]["resources"]
    assert "nvidia.com/gpu" not in res["limits"] and "nvidia.com/gpu" not in res["requests"]


def test_args_should_name_checkpoint_suite_gate_and_output_and_leave_out_empty_ones():
    assert pod_spec(GPU)["containers"][0]["args"] == [
        "--checkpoint=s3://@checkpoints/pretraining/llama-1b-run3/export",
        "--suite=french",
        "--heldout=s3://@datasets/packed/fr-heldout-4k",
        "--gate=/etc/infratech/gate/gate.yaml",
        "--output=s3://@checkpoints/pretraining/llama-1b-run3/export",  # beside the checkpoint by default
        "--cache=/cache/models",
    ]
    cpu = pod_spec(CPU)["containers"][0]["args"]
    assert "--tasks=infratech_fr_qcm,infratech_fr_cloze:3" in cpu and "--backend=hf" in cpu
    assert "--output=s3://@checkpoints/applied/evals/tiny-python-cpu" in cpu
    assert pod_spec(GPU)["containers"][0]["command"] == ["python", "-m", "workloads.eval"]


def test_gate_file_should_hold_the_thresholds_and_be_mounted():
    objects = rendered("llm-eval", GPU)
    cm = one(objects, "ConfigMap")
    assert yaml.safe_load(cm["data"]["gate.yaml"]) == {
        "suite": "french",
        "min_scores": {"infratech_french_bench_mc/acc": 0.3},
        "max_perplexity": {"heldout": 40},
        "max_regression": {"infratech_french_bench_mc/acc": "2%"},
    }
    spec = one(objects, "Job")["spec"]["template"]["spec"]
    assert {"name": "gate", "configMap": {"name": cm["metadata"]["name"]}} in spec["volumes"]
    assert yaml.safe_load(one(rendered("llm-eval", CPU), "ConfigMap")["data"]["gate.yaml"]) == {}


def test_preemption_should_not_use_up_the_retries():
    spec = job(GPU)["spec"]
    assert spec["podFailurePolicy"]["rules"] == [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_should_read_the_team_secret_and_keep_caches_off_the_image():
    container = pod_spec(GPU)["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "object-store"}}]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HF_HOME"].startswith("/cache/") and env["HF_DATASETS_OFFLINE"] == "1"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_ttl_should_be_omitted_when_null():
    assert job(GPU)["spec"]["ttlSecondsAfterFinished"] == 604800
    assert "ttlSecondsAfterFinished" not in job(CPU)["spec"]


@pytest.mark.parametrize(
    "sets,expected",
    [
        (["gpu.count=one"], "at '/gpu/count': got string, want integer"),
        (["backend=deepspeed"], "at '/backend': value must be one of '', 'vllm', 'hf'"),
        (["task=arc_fr"], "additional properties 'task' not allowed"),
        (["readOnlyRootFilesystem=yes"], "at '/readOnlyRootFilesystem': got string, want boolean"),
        (["queue="], "queue: required"),
        (["checkpoint=/data/ckpt"], 'checkpoint "/data/ckpt": must be an s3:// prefix'),
        (["output=/tmp/out"], 'output "/tmp/out": must be an s3:// prefix'),
        (["gpu.count=0"], 'gpu.model "h100-80gb" with gpu.count 0'),
        (["gpu.count=0", "gpu.model="], 'backend "" with gpu.count 0: a CPU evaluation needs backend hf'),
        (["gpu.count=0", "gpu.model=", "backend=vllm"], 'backend "vllm" with gpu.count 0'),
        (["heldout=/data/heldout"], 'heldout "/data/heldout": must be an s3:// prefix'),
        (["tasks[0]=arc_fr:many"], "at '/tasks/0'"),
        (["gpu.model="], "gpu.model: required with gpu.count 1"),
        (["image.tag=latest"], "image.tag: never latest"),
    ],
)
def test_should_refuse_bad_values_naming_them(sets, expected):
    assert expected in render_error("llm-eval", GPU, sets=sets)


def test_should_refuse_neither_suite_nor_tasks(tmp_path):
    empty = tmp_path / "nothing.yaml"
    empty.write_text("suite: ''\ntasks: []\n")
    assert "suite or tasks: required" in render_error("llm-eval", GPU, empty)
