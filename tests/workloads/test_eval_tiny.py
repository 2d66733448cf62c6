"""Evaluation of the tiny model the trainer makes: lm-evaluation-harness (hf backend, CPU) on the
local French tasks, held-out perplexity, results and report, and the gate on real results.

One training run for the module (debug_tiny, one process, 30 steps, a checkpoint every 10: about
30 s on 2 cores); its step-10 and step-30 exports and an untrained model of the same shape are
evaluated. About a minute and a half in all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lm_eval")

from workloads.data import synthetic  # noqa: E402
from workloads.data.prepare import prepare  # noqa: E402
from workloads.errors import UserError  # noqa: E402
from workloads.eval import modelfiles  # noqa: E402
from workloads.eval.perplexity import heldout_perplexity  # noqa: E402

# export_checkpoint reads the DCP shards in one process, and torch says so
pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled:UserWarning")
REPO = Path(__file__).resolve().parents[2]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "INFRATECH_TRAIN_FAULT"}
    return {**env, **OFFLINE}


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    from transformers import AutoConfig, LlamaForCausalLM

    from workloads.train.export import export_checkpoint

    root = tmp_path_factory.mktemp("eval")
    run = root / "run"
    proc = _cli("workloads.train", "--recipe", "debug_tiny", f"run.dir={run}", "train.steps=30",
                "checkpoint.every=10", "checkpoint.keep=5", "train.device=cpu")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {"step30": run / "export",
           "step10": export_checkpoint(run / "checkpoints" / "step-000000010", root / "step10", "float32")}
    # the same architecture and tokenizer, untrained
    init = root / "init"
    torch.manual_seed(0)
    LlamaForCausalLM(AutoConfig.from_pretrained(out["step30"])).save_pretrained(init)
    for f in out["step30"].glob("tokenizer*"):
        shutil.copy(f, init / f.name)
    out["init"] = init
    # held-out sentences: another seed of the synthetic corpus, tokenized with the run's tokenizer
    corpus = synthetic.write_jsonl(root / "heldout.jsonl", 200, seed=1)
    out["heldout"] = root / "heldout"
    prepare([str(corpus)], str(out["heldout"]), tokenizer=str(run / "tokenizer"), seq_len=128,
            sequences_per_shard=64, log=lambda m: None)
    out["root"] = root
    return out


def test_held_out_perplexity_falls_as_training_goes_on(models):
    ppl = {name: heldout_perplexity(models[name], str(models["heldout"]), max_sequences=64)
           for name in ("init", "step10", "step30")}
    values = {k: round(v["perplexity"], 2) for k, v in ppl.items()}
    print(f"\nheld-out perplexity: {values}")
    assert ppl["init"]["perplexity"] > ppl["step10"]["perplexity"] > ppl["step30"]["perplexity"]
    assert ppl["init"]["perplexity"] > 200  # about the vocabulary size (512) before any training
    assert ppl["step30"]["perplexity"] < 40
    one = ppl["step30"]
    assert one["sequences"] == 64 and one["tokens"] == 64 * 127 and one["seq_len"] == 128
    assert one["shards"] == ["shard-000000.bin"] and len(one["dataset_manifest_sha256"]) == 64
    only_second = heldout_perplexity(models["step30"], str(models["heldout"]), shard=1)
    assert only_second["shards"] == ["shard-000001.bin"]


def test_evaluation_and_gate_write_well_formed_evidence_beside_the_model(models):
    model = models["step30"]
    proc = _cli("workloads.eval", str(model), "--suite", "cpu_smoke", "--heldout", str(models["heldout"]),
                "--gate", "debug_tiny", "--registry", str(models["root"] / "promotions"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "gate: promoted" in proc.stdout

    results = json.loads((model / "evaluation" / "results.json").read_text())
    assert results["schema"] == "infratech-eval-v1" and results["backend"] == "hf" and results["limit"] is None
    assert results["model"]["fingerprint"] == modelfiles.fingerprint(modelfiles.model_files(model))
    assert results["model"]["provenance"]["step"] == 30
    scores = results["scores"]
    expected = {"heldout/perplexity", "infratech_fr/acc", "infratech_fr_qcm/acc", "infratech_fr_qcm/acc_norm",
                "infratech_fr_accords/acc", "infratech_fr_accords/acc_norm", "infratech_fr_cloze/acc",
                "infratech_fr_cloze/perplexity"}
    assert expected <= set(scores), sorted(scores)
    items = {"infratech_fr_qcm": 32, "infratech_fr_accords": 30, "infratech_fr_cloze": 30, "infratech_fr": 92}
    for name, s in scores.items():
        task, metric = name.split("/")
        assert isinstance(s["value"], float), name
        if metric.startswith("acc"):
            assert 0.0 <= s["value"] <= 1.0 and s["higher_is_better"] is True and s["stderr"] is not None
            assert s["n"] == items[task] and s["num_fewshot"] == 0
        else:
            assert s["higher_is_better"] is False and s["value"] > 1.0
    assert scores["heldout/perplexity"]["value"] < 40
    assert results["lm_eval"]["lm_eval_version"] == "0.4.12"
    assert results["lm_eval"]["n-samples"]["infratech_fr_qcm"] == {"original": 32, "effective": 32}
    assert {"python", "torch", "transformers", "device"} <= set(results["environment"])

    report = (model / "evaluation" / "report.md").read_text()
    assert report.startswith(f"# Evaluation of `{model}`")
    assert "| `infratech_fr_qcm/acc` |" in report and "## Held-out perplexity" in report

    verdict = json.loads((model / "promotion.json").read_text())
    assert verdict["verdict"] == "promoted" and verdict["thresholds"]["path"].endswith("debug_tiny.yaml")
    assert verdict["model"]["files"] == results["model"]["files"]
    assert _cli("workloads.gate", "status", str(model)).returncode == 0


def test_an_untrained_model_is_evaluated_and_rejected_and_then_not_served(models):
    model = models["init"]
    proc = _cli("workloads.eval", str(model), "--tasks", "infratech_fr_qcm", "--heldout", str(models["heldout"]),
                "--gate", "debug_tiny", "--registry", str(models["root"] / "promotions"))
    assert proc.returncode == 0, proc.stderr[-3000:]  # evidence written: the verdict is in promotion.json
    verdict = json.loads((model / "promotion.json").read_text())
    assert verdict["verdict"] == "rejected"
    failed = {c["metric"] for c in verdict["checks"] if not c["passed"]}
    assert failed == {"heldout/perplexity", "infratech_fr/acc"}  # too high; the group was not evaluated
    serve = subprocess.run([sys.executable, "-m", "workloads.serve", str(model), "--print-command"], cwd=REPO,
                           env={**_env(), "VLLM_API_KEY": "k"}, capture_output=True, text=True, timeout=120)
    assert serve.returncode == 2 and "refusing to serve" in serve.stderr and "heldout/perplexity" in serve.stderr


def test_a_held_out_set_of_another_tokenizer_is_refused(models, tmp_path):
    from workloads.serve.random_model import synthetic_tokenizer

    other = synthetic_tokenizer(512, tmp_path / "tok")
    assert len(other) == 512
    corpus = synthetic.write_jsonl(tmp_path / "c.jsonl", 50, seed=2)
    prepare([str(corpus)], str(tmp_path / "ds"), tokenizer=str(tmp_path / "tok"), seq_len=128,
            sequences_per_shard=64, log=lambda m: None)
    with pytest.raises(UserError, match="tokenized with another tokenizer"):
        heldout_perplexity(models["step30"], str(tmp_path / "ds"))


def test_unknown_tasks_and_unreachable_upstream_datasets_are_named(models):
    unknown = _cli("workloads.eval", str(models["step10"]), "--tasks", "infratech_fr_qcm,no_such_task")
    assert unknown.returncode == 2 and "unknown task(s) no_such_task" in unknown.stderr
    # FrenchBench reads its data from the Hugging Face Hub, which this machine cannot reach
    upstream = _cli("workloads.eval", str(models["step10"]), "--tasks", "french_bench_vocab:0", "--limit", "2")
    assert upstream.returncode == 2, upstream.stderr[-2000:]
    assert "french_bench_vocab" in upstream.stderr and "HF_DATASETS_OFFLINE=1" in upstream.stderr
    assert "Traceback" not in upstream.stderr
    assert _cli("workloads.eval", "--list-suites").stdout.split()[:2] == ["cpu_smoke", "hf"]
