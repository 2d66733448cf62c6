"""charts/llm-serve/templates/deployment-vllm.yaml: the vLLM replicas, their init step and probes
(what the two steps do when run: test_llm_serve_serving_path.py)."""

from __future__ import annotations

import pytest
from chart_harness import CHARTS_DIR, GPU_TOLERATION, one, rendered

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


def test_should_run_the_launcher_on_the_copy_under_its_name_with_the_api_key_from_a_secret():
    c = container(deployment(GATEWAY))
    assert c["command"] == ["python", "-m", "workloads.serve"]
    assert c["args"] == ["/models/model", "--profile=l40s", "--served-name=tiny", "--host=0.0.0.0", "--port=8000",
                         "--tensor-parallel-size=1", "--startup-timeout=900"]
    env = {e["name"]: e for e in c["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "llm-gateway-api-key", "key": "api-key"}
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in c["ports"]
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in c["volumeMounts"]


@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_tensor_parallelism_should_span_the_replicas_gpus(gpus):
    c = container(deployment(TEAM, "applied", sets=(f"gpu.count={gpus}",)))
    assert f"--tensor-parallel-size={gpus}" in c["args"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == c["resources"]["requests"]["nvidia.com/gpu"] == str(gpus)


def test_the_server_should_wait_as_long_as_its_startup_probe():
    c = container(deployment(TEAM, "applied"))
    assert "--startup-timeout=1800" in c["args"]  # probes.modelLoadSeconds of the scenario


def test_the_init_step_should_fetch_with_the_object_store_secret_in_the_servers_image():
    d = deployment(GATEWAY)
    init = container(d, "fetch")
    assert [c["name"] for c in d["spec"]["template"]["spec"]["initContainers"]] == ["fetch"]
    assert init["image"] == container(d)["image"] == "ghcr.io/infratech-souveraine/llm-serve:0.1.0"
    assert init["command"] == ["python", "-m", "workloads.serve"]
    assert init["args"] == ["fetch", "s3://@checkpoints/pretraining/tiny/export", "--dest=/models/model"]
    assert init["envFrom"] == [{"secretRef": {"name": "object-store"}}]
    assert "envFrom" not in container(d)  # the server never holds the object-store credentials
    assert "infratech.io/served-unpromoted" not in d["metadata"]["annotations"]
    assert d["metadata"]["annotations"]["infratech.io/serving-profile"] == "l40s"


def test_forcing_an_unpromoted_checkpoint_should_reach_both_steps_and_stay_on_record():
    d = deployment(TEAM, "applied")
    reason = "A/B test against the promoted run, approved by the applied team lead"
    assert container(d, "fetch")["args"][-1] == f"--force-unpromoted={reason}"
    assert container(d)["args"][-1] == f"--force-unpromoted={reason}"
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


def test_digest_should_pin_the_image_of_both_steps():
    d = deployment(MINIMAL)
    assert container(d)["image"] == container(d, "fetch")["image"]
    assert container(d)["image"].startswith("ghcr.io/infratech-souveraine/llm-serve@sha256:")
