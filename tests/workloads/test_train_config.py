"""Recipes, overrides, the command line's errors, FLOPs, peaks and the LR schedule (in-process)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from workloads.errors import UserError  # noqa: E402
from workloads.train import recipes  # noqa: E402
from workloads.train.__main__ import main as train_main  # noqa: E402
from workloads.train.config import OVERRIDABLE, apply_overrides  # noqa: E402
from workloads.train.metrics import peak_flops  # noqa: E402
from workloads.train.model import count_params, flops_per_token  # noqa: E402
from workloads.train.optim import lr_at  # noqa: E402
from workloads_fakes import REPO, env  # noqa: E402


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_every_recipe_is_a_complete_valid_tree(name):
    cfg = recipes.get(name)
    assert cfg.run.name == name
    assert cfg.train.seq_len <= cfg.model.arch.max_seq_len
    assert recipes.summary(name)


def test_lucie_7b_has_lucie_7b_architecture():
    arch = recipes.get("lucie_7b").model.arch
    assert (arch.num_layers, arch.hidden_size, arch.num_heads, arch.num_kv_heads, arch.intermediate_size,
            arch.vocab_size) == (32, 4096, 32, 8, 12288, 65024)
    assert recipes.get("lucie_7b").train.seq_len == 4096
    # the model card's exact count: "6 706 958 336 free parameters"
    assert count_params(arch)["total"] == 6_706_958_336


def test_parameter_count_matches_transformers():
    import torch
    from transformers import LlamaForCausalLM

    from workloads.train.model import hf_config

    for name in recipes.RECIPES:
        arch = recipes.get(name).model.arch
        with torch.device("meta"):
            model = LlamaForCausalLM(hf_config(arch))
        assert sum(p.numel() for p in model.parameters()) == count_params(arch)["total"], name


def test_flops_per_token_by_hand():
    arch = recipes.get("lucie_7b").model.arch
    n = 6_706_958_336
    embed = 65024 * 4096
    assert flops_per_token(arch, 4096) == 6 * (n - embed) + 12 * 32 * 32 * 128 * 4096
    tied = recipes.get("llama_1b").model.arch  # tied: the output projection still costs its matmul
    assert flops_per_token(tied, 4096) == 6 * count_params(tied)["total"] + 12 * 16 * 32 * 64 * 4096


@pytest.mark.parametrize("device, flops", [
    ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H100 NVL", 835e12),
    ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-80GB", 312e12), ("NVIDIA L40S", 362.05e12),
    ("NVIDIA L4", 121e12), ("cpu", None), ("NVIDIA GeForce RTX 4090", None),
    # a name that merely starts like a listed one is another card
    ("NVIDIA L40", 181.05e12), ("NVIDIA H200 NVL", 835.5e12), ("NVIDIA H20", None), ("NVIDIA A1000", None),
])
def test_peak_table(device, flops):
    value, source = peak_flops(device)
    assert value == flops and (source is None) == (flops is None)


def test_warmup_then_cosine_to_min_lr():
    cfg = recipes.get("debug_tiny").train
    lrs = [lr_at(s, cfg) for s in range(cfg.steps)]
    assert lrs[0] == pytest.approx(cfg.lr / cfg.warmup_steps)
    assert lrs[cfg.warmup_steps - 1] == pytest.approx(cfg.lr) == max(lrs)
    assert all(a >= b for a, b in zip(lrs[cfg.warmup_steps:], lrs[cfg.warmup_steps + 1:]))
    assert lr_at(cfg.steps, cfg) == pytest.approx(cfg.min_lr)


def test_overrides_change_only_documented_keys():
    cfg = apply_overrides(recipes.get("debug_tiny"), ["train.steps=7", "checkpoint.upload=none",
                                                      "data.path=/data/x", "train.compile=true"])
    assert (cfg.train.steps, cfg.checkpoint.upload, cfg.data.path, cfg.data.synthetic, cfg.train.compile) == \
        (7, None, "/data/x", None, True)
    assert "train.steps" in OVERRIDABLE and "model.arch.hidden_size" not in OVERRIDABLE


@pytest.mark.parametrize("override, message", [
    ("train.steps=abc", "train.steps: Input should be a valid integer"),
    ("train.steps=0", "train.steps: Input should be greater than or equal to 1"),
    ("train.device=tpu", "train.device: Input should be 'auto', 'cpu' or 'cuda'"),
    ("train.compile=maybe", "train.compile: Input should be a valid boolean"),
    ("train.beta2=0.9", "'train.beta2' is set by the recipe, not the command line; overridable keys: run.dir"),
    ("model.arch.hidden_size=8", "'model.arch.hidden_size' is set by the recipe"),
    ("trian.steps=3", "'trian.steps' is not a configuration key; overridable keys:"),
    ("train.steps", "is not KEY=VALUE"),
])
def test_bad_overrides_name_the_key_and_what_is_allowed(override, message):
    with pytest.raises(UserError, match=None) as err:
        apply_overrides(recipes.get("debug_tiny"), [override])
    assert message in str(err.value)


def test_cli_errors_are_one_line_not_a_traceback(capsys):
    assert train_main(["--recipe", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown recipe 'nope'; available recipes: debug_tiny, llama_1b, lucie_7b")
    assert train_main(["--recipe", "debug_tiny", "train.lr=-1"]) == 2
    assert "train.lr: Input should be greater than 0 (given '-1')" in capsys.readouterr().err
    assert train_main(["--list-recipes"]) == 0
    assert "train.steps" in capsys.readouterr().out
    assert train_main(["--recipe", "lucie_7b", "--print-config", "train.steps=5"]) == 0
    assert '"steps": 5' in capsys.readouterr().out


def test_a_missing_dataset_is_named_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "workloads.train", "--recipe", "debug_tiny",
                           f"run.dir={tmp_path / 'run'}", f"data.path={tmp_path / 'no-such-data'}"],
                          cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"error: data.path: dataset {tmp_path / 'no-such-data'}: no such directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_metrics_lines_and_the_prometheus_endpoint(tmp_path):
    import json
    import socket
    import urllib.request

    from workloads.train.metrics import MetricsLog

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = MetricsLog(tmp_path / "metrics.jsonl", is_main=True, prometheus_port=port)
    log.write({"step": 3, "loss": 2.5, "grad_norm": 0.9, "lr": 1e-3, "tokens_per_s": 1000.0,
               "tokens_per_s_per_device": 500.0, "mfu": None})
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["loss"] == 2.5
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert "infratech_train_loss 2.5" in body and "infratech_train_step 3.0" in body
    MetricsLog(tmp_path / "other.jsonl", is_main=False).write({"step": 1})
    assert not (tmp_path / "other.jsonl").exists()  # only rank 0 writes


def test_lucie_7b_keeps_its_global_batch_on_the_gpus_a_stack_has():
    train = recipes.get("lucie_7b").train
    assert train.global_batch == 1024  # the model card's final batch, in sequences
    assert {gpus: train.accumulation(gpus) for gpus in (16, 32, 64)} == {16: 32, 32: 16, 64: 8}
    with pytest.raises(UserError, match=r"train.global_batch 1024 is not a multiple of train.micro_batch_size 2 x 24 "
                                        r"processes = 48: set train.global_batch=1008 or 1056"):
        train.accumulation(24)
    assert recipes.get("debug_tiny").train.accumulation(2) == 2  # no global batch: grad_accum as given


@pytest.mark.parametrize("pairs, message", [
    (["train.grad_accum=4"], "train: Value error, set one of grad_accum (4) and global_batch (1024), not both"),
    (["train.global_batch=1025"], "global_batch 1025 is not a multiple of micro_batch_size 2"),
])
def test_global_batch_conflicts_are_named(pairs, message):
    with pytest.raises(UserError, match=re.escape(message)):
        apply_overrides(recipes.get("lucie_7b"), pairs)
    assert apply_overrides(recipes.get("lucie_7b"), ["train.global_batch=none", "train.grad_accum=4"]).train.grad_accum == 4
