"""charts/llm-serve runs the serving path of `python -m workloads.serve`, not a copy of it.

The rendered containers' command lines are run here as the kubelet would start them: the same argv
(`python` is this interpreter, with the repository on PYTHONPATH as the serving image has
/opt/infratech), the object-store Secret's variables, `/models` (the emptyDir) mounted at a
temporary directory. The object store is the local store of workloads.objectstore
(`AWS_ENDPOINT_URL=file://…`: buckets are folders), the model a tiny directory judged by the real
promotion gate. And for every GPU serving profile, the flags vLLM would get from the rendered server
are those workloads.serve builds from that profile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chart_harness import CHARTS_DIR, one, rendered

from workloads import objectstore
from workloads.serve import launcher
from workloads.serve import profile as prof

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "workloads"))
from workloads_fakes import promoted_model  # noqa: E402

CI = CHARTS_DIR / "llm-serve" / "ci"
GATEWAY = CI / "01-gateway-values.yaml"  # model.uri: s3://@checkpoints/pretraining/tiny/export
PREFIX = "pretraining/tiny/export"
BUCKET = "ckpt"
REASON = "canary of the tokenizer fix (approved by the pretraining lead)"
GPU_PROFILES = [name for name in prof.available() if prof.load(name).device == "cuda"]


def deployment(*sets: str) -> dict:
    return one(rendered("llm-serve", GATEWAY, namespace="serving", sets=sets), "Deployment")


def container(d: dict, name: str) -> dict:
    spec = d["spec"]["template"]["spec"]
    return next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name)


class Pod:
    """Runs a rendered container's argv here: its volume `models` at a temporary directory."""

    def __init__(self, tmp_path: Path, store: Path):
        self.models = tmp_path / "models"  # the emptyDir, shared by the init step and the server
        self.models.mkdir()
        self.workdir = tmp_path / "workspace"
        self.workdir.mkdir()
        self.store = store

    def argv(self, c: dict) -> list[str]:
        mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "models")
        args = [a.replace(mount, str(self.models)) for a in c["command"] + c["args"]]
        assert args[0] == "python"
        return [sys.executable, *args[1:]]

    def run(self, c: dict, *extra: str, **env: str) -> subprocess.CompletedProcess:
        environ = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(self.workdir)}
        if c.get("envFrom"):  # the object-store Secret: what the platform writes, pointed at the local store
            assert c["envFrom"] == [{"secretRef": {"name": "object-store"}}]
            environ |= {"AWS_ENDPOINT_URL": f"file://{self.store}", "S3_BUCKET_CHECKPOINTS": BUCKET}
        return subprocess.run(self.argv(c) + list(extra), cwd=self.workdir, env=environ | env, capture_output=True,
                              text=True, timeout=120)


@pytest.fixture
def publish(tmp_path, monkeypatch):
    """Publish a model judged by the gate to the local store, where the chart's model.uri points."""
    store = tmp_path / "store"
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"file://{store}")

    def _publish(promoted: bool | None = True) -> Path:
        model = promoted_model(tmp_path / "src", promoted=promoted)
        objectstore.upload_dir(model, f"s3://{BUCKET}/{PREFIX}", last=("promotion.json",))
        return store / BUCKET / PREFIX

    (tmp_path / "src").mkdir()
    return _publish


@pytest.fixture
def pod(tmp_path):
    return Pod(tmp_path, tmp_path / "store")


def test_the_init_step_should_copy_a_promoted_checkpoint_with_every_file_verified(publish, pod):
    published = publish()
    run = pod.run(container(deployment(), "fetch"))
    assert run.returncode == 0, run.stderr
    copy = pod.models / "model"
    verdict = json.loads((copy / "promotion.json").read_text())
    for name, meta in verdict["model"]["files"].items():
        assert (copy / name).read_bytes() == (published / name).read_bytes(), name
    assert "all sha256-verified" in run.stderr and "may be served" in run.stderr and "(promoted;" in run.stderr


def test_the_init_step_should_refuse_a_checkpoint_with_one_corrupted_file(publish, pod):
    published = publish()
    weights = published / "model.safetensors"
    weights.write_bytes(b"x" * weights.stat().st_size)  # same size, other bytes
    run = pod.run(container(deployment(), "fetch"))
    assert run.returncode == 2
    assert "model.safetensors: sha256" in run.stderr and "but the gate recorded" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (pod.models / "model" / "model.safetensors").exists()  # not left for the server


def test_the_init_step_should_refuse_an_unpromoted_checkpoint_with_the_gates_reasons(publish, pod):
    publish(promoted=False)
    run = pod.run(container(deployment(), "fetch"))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "refusing to serve s3://@checkpoints/pretraining/tiny/export: rejected by the gate" in run.stderr
    assert "heldout/perplexity = 500.0 (maximum 10.0)" in run.stderr
    assert not (pod.models / "model" / "model.safetensors").exists()  # refused before the download


def test_the_init_step_should_refuse_a_checkpoint_never_judged(publish, pod):
    publish(promoted=None)
    run = pod.run(container(deployment(), "fetch"))
    assert run.returncode == 2 and "no promotion.json" in run.stderr


def test_forced_with_a_reason_both_steps_should_serve_it_and_log_the_reason(publish, pod):
    publish(promoted=False)
    d = deployment(f"forceUnpromoted={REASON}")
    fetched = pod.run(container(d, "fetch"))
    assert fetched.returncode == 0, fetched.stderr
    assert f"NOTE serving a model the gate did not promote, forced: {REASON}" in fetched.stderr
    assert "NOT promoted, forced" in fetched.stderr
    served = pod.run(container(d, "vllm"), "--print-command", VLLM_API_KEY="k")
    assert served.returncode == 0, served.stderr
    assert f"forced: {REASON}" in served.stderr


def test_the_server_should_judge_the_copy_again(publish, pod):
    publish()
    d = deployment()
    assert pod.run(container(d, "fetch")).returncode == 0
    (pod.models / "model" / "tokenizer.json").write_text('{"changed": true}')
    served = pod.run(container(d, "vllm"), "--print-command", VLLM_API_KEY="k")
    assert served.returncode == 2
    assert "refusing to serve" in served.stderr and "the files differ from those the gate judged" in served.stderr


@pytest.mark.parametrize("name", GPU_PROFILES)
def test_each_profile_should_give_vllm_exactly_the_profiles_flags(name, publish, pod):
    publish()
    d = deployment(f"profile={name}")
    assert container(d, "fetch")["args"] == container(deployment(), "fetch")["args"]  # the same for every profile
    assert pod.run(container(d, "fetch")).returncode == 0
    served = pod.run(container(d, "vllm"), "--print-command", VLLM_API_KEY="k")
    assert served.returncode == 0, served.stderr
    command = served.stdout.split()
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    # what workloads.serve builds for this profile, on this model, where a replica listens
    copy = pod.models / "model"
    profile = prof.load(name, host="0.0.0.0", port=8000, tensor_parallel_size=1)
    length, _ = launcher.preflight(copy, profile)
    assert command[3:] == prof.vllm_args(profile, copy, "tiny", length)
    # and the profile's file is what reached vLLM, not a default
    raw = prof.load(name)
    assert command[command.index("--gpu-memory-utilization") + 1] == str(raw.gpu_memory_utilization)
    assert command[command.index("--kv-cache-dtype") + 1] == raw.kv_cache_dtype
    if raw.max_num_batched_tokens:
        assert command[command.index("--max-num-batched-tokens") + 1] == str(raw.max_num_batched_tokens)
    assert "--api-key" not in command  # the key stays in the environment


def test_the_schema_should_offer_exactly_the_gpu_profiles():
    schema = json.loads((CHARTS_DIR / "llm-serve" / "values.schema.json").read_text())
    assert schema["properties"]["profile"]["enum"] == ["", *GPU_PROFILES]
    validations = (CHARTS_DIR / "llm-serve" / "templates" / "validations.yaml").read_text()
    assert f"workloads/serve/profiles: {', '.join(GPU_PROFILES)})" in validations


# vLLM 0.32's server parses its command line with make_arg_parser(FlexibleArgumentParser()), then
# validate_parsed_serve_args (vllm/entrypoints/launchers/api_server/entry.py main)
_VLLM_PARSE = """
import json, sys
from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
from vllm.utils.argparse_utils import FlexibleArgumentParser
out = {}
for name, argv in json.loads(sys.argv[1]).items():
    ns = make_arg_parser(FlexibleArgumentParser()).parse_args(argv)
    validate_parsed_serve_args(ns)
    out[name] = {k: getattr(ns, k) for k in ("gpu_memory_utilization", "kv_cache_dtype", "max_num_seqs",
                 "max_num_batched_tokens", "enable_prefix_caching", "enable_chunked_prefill", "dtype", "max_model_len")}
print(json.dumps(out))
"""


def test_vllms_own_parser_should_take_each_profiles_rendered_command(publish, pod):
    """What the rendered server would hand vLLM, read back by the installed vLLM 0.32 (.venv-serve)."""
    from workloads_fakes import vllm_python_or_skip

    python = vllm_python_or_skip()
    publish()
    assert pod.run(container(deployment(), "fetch")).returncode == 0
    commands = {}
    for name in GPU_PROFILES:
        served = pod.run(container(deployment(f"profile={name}"), "vllm"), "--print-command", VLLM_API_KEY="k")
        assert served.returncode == 0, served.stderr
        commands[name] = served.stdout.split()[3:]
    parsed = subprocess.run([python, "-c", _VLLM_PARSE, json.dumps(commands)], capture_output=True, text=True,
                            timeout=600)
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    seen = json.loads(parsed.stdout.strip().splitlines()[-1])
    for name in GPU_PROFILES:
        p = prof.load(name)
        assert seen[name]["gpu_memory_utilization"] == p.gpu_memory_utilization, name
        assert seen[name]["kv_cache_dtype"] == p.kv_cache_dtype and seen[name]["dtype"] == p.dtype, name
        assert seen[name]["max_num_seqs"] == p.max_num_seqs, name
        assert seen[name]["max_num_batched_tokens"] == p.max_num_batched_tokens, name
        assert seen[name]["enable_prefix_caching"] is p.enable_prefix_caching, name
        assert seen[name]["enable_chunked_prefill"] is p.enable_chunked_prefill, name
