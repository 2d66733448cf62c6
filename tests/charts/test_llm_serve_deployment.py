"""charts/llm-serve/templates/deployment-vllm.yaml: the vLLM replicas, their gate and probes."""

from __future__ import annotations

import pytest
from chart_harness import CHARTS_DIR, GPU_TOLERATION, one, render_error, rendered

CI = CHARTS_DIR / "llm-serve" / "ci"
GATEWAY = CI / "01-gateway-values.yaml"
TEAM = CI / "02-team-namespace-values.yaml"
MINIMAL = CI / "03-minimal-values.yaml"


def deployment(path, namespace="serving", sets=()):
    return one(rendered("llm-serve", path, namespace=namespace, sets=sets), "Deployment")


def container(d, name="vllm"):
    return next(c for c in d["spec"]["template"]["spec"]["containers"] + d["spec"]["template"]["spec"]["initContainers"] if c["name"] == name)


def test_probes_should_give_the_model_its_load_time_then_watch_health():
    c = container(deployment(GATEWAY))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 900  # probes.modelLoadSeconds
    team = container(deployment(TEAM, "applied"))["startupProbe"]
    assert (team["periodSeconds"], team["failureThreshold"]) == (15, 120)  # 1800 s


def test_should_serve_the_copied_model_under_its_name_with_the_api_key_from_a_secret():
    c = container(deployment(GATEWAY))
    assert c["command"] == ["vllm", "serve"]
    assert c["args"][:4] == ["/models/model", "--host=0.0.0.0", "--port=8000", "--served-model-name=tiny"]
    assert "--tensor-parallel-size=1" in c["args"] and "--enable-prefix-caching" in c["args"]
    env = {e["name"]: e for e in c["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "llm-gateway-api-key", "key": "api-key"}
    assert env["VLLM_NO_USAGE_STATS"]["value"] == "1" and env["HF_HUB_OFFLINE"]["value"] == "1"
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in c["ports"]


@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_tensor_parallelism_should_span_the_replicas_gpus(gpus):
    # tensorParallelSize 0 (the default): the chart derives it from gpu.count
    c = container(deployment(TEAM, "applied", sets=(f"gpu.count={gpus}", "vllm.tensorParallelSize=0")))
    assert f"--tensor-parallel-size={gpus}" in c["args"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == c["resources"]["requests"]["nvidia.com/gpu"] == str(gpus)


def test_tensor_parallelism_other_than_the_gpu_count_should_be_refused():
    error = render_error("llm-serve", TEAM, namespace="applied", sets=("gpu.count=4", "vllm.tensorParallelSize=2"))
    assert "vllm.tensorParallelSize 2 with gpu.count 4" in error


def test_the_context_length_and_extra_arguments_should_reach_vllm():
    c = container(deployment(TEAM, "applied", sets=("vllm.maxModelLen=8192", "vllm.extraArgs[0]=--max-num-seqs=17")))
    assert "--max-model-len=8192" in c["args"] and "--max-num-seqs=17" in c["args"]


def test_gate_should_check_the_promotion_verdict_before_vllm_starts():
    d = deployment(GATEWAY)
    gate = container(d, "gate")
    assert gate["image"] == "ghcr.io/infratech-souveraine/llm-train:0.1.0"
    assert gate["command"] == ["python", "/opt/infratech/gate.py"]
    assert gate["args"] == [
        "--model=s3://@checkpoints/pretraining/tiny/export",
        "--promotion=s3://@checkpoints/pretraining/tiny/export/promotion.json",
        "--dest=/models/model",
    ]
    assert gate["envFrom"] == [{"secretRef": {"name": "object-store"}}]
    assert "infratech.io/served-unpromoted" not in d["metadata"]["annotations"]


def test_forcing_an_unpromoted_checkpoint_should_leave_its_reason_on_record():
    d = deployment(TEAM, "applied")
    reason = "A/B test against the promoted run, approved by the applied team lead"
    assert container(d, "gate")["args"][-1] == f"--force-reason={reason}"
    assert d["metadata"]["annotations"]["infratech.io/served-unpromoted"] == reason


def test_should_run_on_the_gpu_model_with_the_flavours_toleration():
    spec = deployment(GATEWAY)["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"infratech.io/gpu-model": "l40s"}
    assert spec["tolerations"] == [GPU_TOLERATION]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in spec["volumes"]


def test_replicas_should_be_left_to_the_autoscaler_when_it_is_on():
    assert "replicas" not in deployment(GATEWAY)["spec"]
    assert deployment(TEAM, "applied")["spec"]["replicas"] == 2
    assert deployment(GATEWAY)["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}


def test_digest_should_pin_the_server_image():
    assert container(deployment(MINIMAL))["image"].startswith("docker.io/vllm/vllm-openai@sha256:")
    assert container(deployment(GATEWAY))["image"] == "vllm/vllm-openai:v0.32.0"
