"""The serving launcher without a server: profiles -> vLLM flags, the checks made before a minute of
model loading (gate, architecture, API key), and the verified fetch from object storage (an
in-memory S3). A few seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workloads import objectstore
from workloads.errors import UserError
from workloads.eval import modelfiles
from workloads.gate import decide as gate
from workloads.serve import fetch as fetch_mod
from workloads.serve import launcher
from workloads.serve import profile as prof
from workloads_fakes import FakeS3
from workloads_fakes import promoted_model as model_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", "test-key")
    return "test-key"


def test_every_shipped_profile_loads_and_gpu_ones_state_their_memory():
    assert prof.available() == ["cpu", "h100", "l4", "l40s"]
    for name in prof.available():
        p = prof.load(name)
        assert p.name == name and p.description
        if p.device == "cuda":
            assert p.gpu_memory_utilization and p.host == "0.0.0.0" and p.api_key_file
            assert p.enable_prefix_caching and p.enable_chunked_prefill
    assert prof.load("l4").kv_cache_dtype == "fp8"
    assert prof.load("h100").max_num_batched_tokens == 16384


def test_profile_to_vllm_flags(tmp_path):
    args = prof.vllm_args(prof.load("h100"), tmp_path, "lucie-7b", 32000)
    flags = dict(zip(args[::2], args[1::2], strict=False))
    assert flags["--model"] == str(tmp_path) and flags["--served-model-name"] == "lucie-7b"
    assert flags["--max-model-len"] == "32000" and flags["--gpu-memory-utilization"] == "0.92"
    assert flags["--tensor-parallel-size"] == "1" and flags["--kv-cache-dtype"] == "auto"
    assert {"--enable-prefix-caching", "--enable-chunked-prefill"} <= set(args)
    assert "--api-key" not in args and "--chat-template" not in args
    cpu = prof.vllm_args(prof.load("cpu"), tmp_path, "tiny", 128)
    assert "--gpu-memory-utilization" not in cpu
    assert cpu[cpu.index("--chat-template") + 1].endswith("templates/plain_fr.jinja")
    off = prof.vllm_args(prof.load("cpu", enable_prefix_caching=False), tmp_path, "t", 64)
    assert "--no-enable-prefix-caching" in off


@pytest.mark.parametrize("over, message", [
    ({"gpu_memory_utilization": 0.9}, "gpu_memory_utilization is for cuda"),
    ({"tensor_parallel_size": 2}, "tensor_parallel_size must be 1 on cpu"),
    ({"kv_cache_dtype": "fp4"}, "kv_cache_dtype"),
    ({"port": 0}, "port"),
])
def test_impossible_profiles_are_refused_naming_the_key(over, message):
    with pytest.raises(UserError, match=message):
        prof.load("cpu", **over)


def test_a_cuda_profile_needs_its_memory_fraction(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: x\ndevice: cuda\nmax_model_len: 4096\n")
    with pytest.raises(UserError, match="gpu_memory_utilization is required on cuda"):
        prof.load(str(path))


def test_an_unpromoted_model_is_refused_with_the_gates_reasons_unless_forced(tmp_path, key):
    model = model_dir(tmp_path, promoted=False)
    with pytest.raises(UserError, match=r"refusing to serve .*heldout/perplexity = 500.0 \(maximum 10.0\).*--force-unpromoted"):
        launcher.plan(str(model), prof.load("cpu"))
    with pytest.raises(UserError, match="refusing to serve"):  # forced without a reason is not forced
        launcher.plan(str(model), prof.load("cpu"), force="  ")
    forced = launcher.plan(str(model), prof.load("cpu"), force="A/B test against run 6")
    assert not forced.promoted
    assert "did not promote, forced: A/B test against run 6 (not promoted: rejected by the gate" in forced.notes[0]


def test_a_model_never_gated_is_refused(tmp_path, key):
    model = model_dir(tmp_path, promoted=None)
    with pytest.raises(UserError, match="never through the gate"):
        launcher.plan(str(model), prof.load("cpu"))


def test_the_plan_of_a_promoted_model(tmp_path, key):
    model = model_dir(tmp_path)
    p = launcher.plan(str(model), prof.load("cpu", port=8123), served_name="tiny", python="/opt/vllm/bin/python")
    assert p.promoted and p.served_name == "tiny" and p.base_url == "http://127.0.0.1:8123"
    assert p.command[:3] == ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert p.command[p.command.index("--max-model-len") + 1] == "128"  # the profile's 256 capped to the model's
    assert any("capped to the model's 128" in n for n in p.notes)
    assert p.env["VLLM_API_KEY"] == key and key not in " ".join(p.command)  # never on the command line
    assert p.env["VLLM_CPU_KVCACHE_SPACE"] == "1" and p.env["HF_HUB_OFFLINE"] == "1"
    assert key not in repr(p)


@pytest.mark.parametrize("cfg, message", [
    ({"hidden_size": 64, "num_attention_heads": 4}, "head_dim 16"),
    ({"hidden_size": 96, "num_attention_heads": 2, "head_dim": 48}, "head_dim 48"),
])
def test_an_architecture_vllm_cpu_cannot_run_is_refused_before_start(tmp_path, key, cfg, message):
    model = model_dir(tmp_path, **cfg)
    with pytest.raises(UserError, match=message + r".* not supported by vLLM's CPU attention"):
        launcher.plan(str(model), prof.load("cpu"))


def test_api_key_sources_in_order_and_never_none(tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    p = prof.load("cpu")
    with pytest.raises(UserError, match="no API key"):
        launcher.api_key(p)
    secret = tmp_path / "key"
    secret.write_text("from-file\n")
    mounted = prof.load("cpu", api_key_file=str(secret))
    assert launcher.api_key(mounted) == "from-file"
    monkeypatch.setenv("VLLM_API_KEY", "from-env")
    assert launcher.api_key(mounted) == "from-env"
    explicit = tmp_path / "explicit"
    explicit.write_text("explicit")
    assert launcher.api_key(mounted, str(explicit)) == "explicit"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(UserError, match="is empty"):
        launcher.api_key(p, str(tmp_path / "empty"))


@pytest.fixture
def s3(monkeypatch):
    fake = FakeS3()
    monkeypatch.setattr(objectstore, "_client_factory", lambda: fake)
    return fake


def test_publish_then_fetch_verifies_every_file_and_reuses_the_cache(tmp_path, s3, key):
    model = model_dir(tmp_path)
    pub = subprocess.run([sys.executable, "-c", "import sys; from workloads.gate.__main__ import main; "
                          "sys.exit(main(sys.argv[1:]))", "publish", str(model), "s3://ckpt/models/tiny"],
                         cwd=REPO, capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
    assert pub.returncode == 2 and "AWS_" in pub.stderr  # a real client needs credentials: said, not a traceback
    objectstore.upload_dir(model, "s3://ckpt/models/tiny", last=("promotion.json",))
    uploads = [c for c in s3.calls if c.startswith("upload")]
    assert uploads[-1] == "upload models/tiny/promotion.json"  # the verdict last: its presence means complete

    cache = tmp_path / "cache"
    local = fetch_mod.fetch("s3://ckpt/models/tiny", cache, log=lambda m: None)
    assert modelfiles.model_files(local) == modelfiles.model_files(model)
    assert gate.status(local)[0]
    s3.calls.clear()
    again = fetch_mod.fetch("s3://ckpt/models/tiny", cache, log=lambda m: None)
    assert again == local and not [c for c in s3.calls if c.startswith("download models/tiny/model")]

    p = launcher.plan("s3://ckpt/models/tiny", prof.load("cpu"), cache_dir=cache, log=lambda m: None)
    assert p.model_dir == local and p.promoted


def test_a_corrupted_object_is_refused_and_not_left_in_the_cache(tmp_path, s3):
    model = model_dir(tmp_path)
    objectstore.upload_dir(model, "s3://ckpt/m", last=("promotion.json",))
    s3.objects[("ckpt", "m/model.safetensors")] = b"x" * 1000  # same size, other bytes
    with pytest.raises(fetch_mod.ChecksumError, match="model.safetensors: sha256 .* but the gate recorded"):
        fetch_mod.fetch("s3://ckpt/m", tmp_path / "cache", log=lambda m: None)
    assert not list((tmp_path / "cache").rglob("model.safetensors"))


def test_a_prefix_without_a_verdict_cannot_be_fetched(tmp_path, s3):
    model = model_dir(tmp_path, promoted=None)
    objectstore.upload_dir(model, "s3://ckpt/raw")
    with pytest.raises(UserError, match="no promotion.json"):
        fetch_mod.fetch("s3://ckpt/raw", tmp_path / "cache")


def test_cli_refuses_and_prints_the_command(tmp_path, key):
    unpromoted = model_dir(tmp_path, promoted=False)
    run = lambda *a: subprocess.run([sys.executable, "-m", "workloads.serve", *a], cwd=REPO,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    refused = run(str(unpromoted), "--profile", "cpu", "--print-command")
    assert refused.returncode == 2 and "refusing to serve" in refused.stderr and "Traceback" not in refused.stderr
    bare = run(str(unpromoted), "--profile", "cpu", "--print-command", "--force", "--port", "9001")
    assert bare.returncode == 2 and "--force" in bare.stderr  # no flag without a reason
    forced = run(str(unpromoted), "--profile", "cpu", "--print-command", "--force-unpromoted", "A/B test",
                 "--port", "9001")
    assert forced.returncode == 0 and "--port 9001" in forced.stdout
    assert "NOTE serving a model the gate did not promote, forced: A/B test" in forced.stderr
    listed = run("--list-profiles")
    assert listed.returncode == 0 and listed.stdout.split()[::1][0] == "cpu"


# vLLM's own batch defaults for a card, asked of the installed vLLM (.venv-serve) with the card's
# name and memory in place of this machine's CPU platform (vllm/engine/arg_utils.py get_batch_defaults)
_VLLM_DEFAULTS = """
import json, sys
from vllm.engine.arg_utils import EngineArgs
from vllm.platforms import current_platform
from vllm.usage.usage_lib import UsageContext
name, gib = sys.argv[1], float(sys.argv[2])
cls = type(current_platform)
cls.get_device_total_memory = classmethod(lambda c, device_id=0: int(gib * (1 << 30)))
cls.get_device_name = classmethod(lambda c, device_id=0: name)
cls.is_cpu = lambda self: False
tokens, seqs = EngineArgs.get_batch_defaults(world_size=1)
print(json.dumps([seqs[UsageContext.OPENAI_API_SERVER], tokens[UsageContext.OPENAI_API_SERVER]]))
"""


@pytest.mark.parametrize("profile, card, gib", [
    ("l4", "NVIDIA L4", 22.5), ("l40s", "NVIDIA L40S", 44.5), ("h100", "NVIDIA H100 80GB HBM3", 79.2),
])
def test_no_gpu_profile_caps_the_decode_batch_below_vllms_own_default(profile, card, gib):
    """vLLM allocates KV-cache blocks as tokens are produced (vllm/v1/core/kv_cache_manager.py
    allocate_slots): max_num_seqs reserves no memory per sequence, it only caps the decode batch,
    and a memory-bound card decodes more tokens per second with a bigger batch."""
    from workloads_fakes import vllm_python_or_skip

    out = subprocess.run([vllm_python_or_skip(), "-c", _VLLM_DEFAULTS, card, str(gib)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    default_seqs, _ = json.loads(out.stdout.strip().splitlines()[-1])
    p = prof.load(profile)
    assert p.max_num_seqs is None or p.max_num_seqs >= default_seqs, (p.max_num_seqs, default_seqs)


def test_an_unpromoted_prefix_is_refused_before_its_weights_are_downloaded(tmp_path, s3):
    model = model_dir(tmp_path, promoted=False)
    objectstore.upload_dir(model, "s3://ckpt/rejected", last=("promotion.json",))
    s3.calls.clear()
    with pytest.raises(UserError, match=r"refusing to serve s3://ckpt/rejected: rejected by the gate .*perplexity"):
        launcher.prepare("s3://ckpt/rejected", tmp_path / "dest", exact=True, log=lambda m: None)
    assert not [c for c in s3.calls if c.startswith("download")]
    local, promoted, notes = launcher.prepare("s3://ckpt/rejected", tmp_path / "dest", exact=True,
                                              force="canary for the tokenizer fix", log=lambda m: None)
    assert local == tmp_path / "dest" and not promoted and (local / "model.safetensors").is_file()
    assert notes and "forced: canary for the tokenizer fix" in notes[0]


def test_a_replica_states_its_gpus_and_probe_time_over_the_profile(tmp_path, key):
    model = model_dir(tmp_path, num_attention_heads=4, hidden_size=128)
    run = subprocess.run([sys.executable, "-m", "workloads.serve", str(model), "--profile", "l40s", "--print-command",
                          "--tensor-parallel-size=4", "--startup-timeout=1800"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "--tensor-parallel-size 4" in run.stdout
    odd = subprocess.run([sys.executable, "-m", "workloads.serve", str(model), "--profile", "l40s", "--print-command",
                          "--tensor-parallel-size=3"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert odd.returncode == 2 and "4 attention heads cannot be split over tensor_parallel_size 3" in odd.stderr
