"""Each shipped suite, run by the real lm-evaluation-harness, gives every score its shipped
thresholds ask for: the gate on that real output can promote.

The model is the tiny random Llama of ``workloads.serve.random_model`` on CPU (its scores are
noise; only the names and the gate's handling matter). Upstream tasks read their rows from local
stand-ins (``upstream_tasks``: lm-eval's own task files with a few rows of local data instead of
the Hugging Face Hub). About 40 s on 2 cores.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lm_eval")

from upstream_tasks import write_standins  # noqa: E402

from workloads.data import synthetic  # noqa: E402
from workloads.data.prepare import prepare  # noqa: E402
from workloads.eval import harness, suites  # noqa: E402
from workloads.eval.evaluate import evaluate  # noqa: E402
from workloads.gate import thresholds as th_mod  # noqa: E402
from workloads.gate.decide import decide  # noqa: E402
from workloads.serve.random_model import random_llama  # noqa: E402

CPU = {"dtype": "float32", "device": "cpu", "batch_size": 8}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from lm_eval.tasks import TaskManager

    root = tmp_path_factory.mktemp("suites")
    model = random_llama(root / "model", "tiny", dtype="float32")
    corpus = synthetic.write_jsonl(root / "heldout.jsonl", 40, seed=1)
    prepare([str(corpus)], str(root / "heldout"), tokenizer=str(model), seq_len=128, sequences_per_shard=32,
            log=lambda m: None)
    standins = write_standins(TaskManager(include_path=[str(harness.TASKS_DIR)]), root / "standins")
    return {"root": root, "model": model, "heldout": root / "heldout", "standins": standins}


@pytest.mark.parametrize("name", th_mod.available())
def test_the_real_harness_output_of_each_shipped_suite_holds_every_score_its_thresholds_name(
        setup, name, monkeypatch, tmp_path):
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(harness, "task_manager",
                        lambda: TaskManager(include_path=[str(harness.TASKS_DIR), str(setup["standins"])]))
    th, source = th_mod.load(name)
    suite = suites.load(th.suite)
    suite = suites.Suite.model_validate({**suite.model_dump(), "hf": CPU})  # the suite's tasks, on this CPU
    model = tmp_path / "model"
    model.symlink_to(setup["model"], target_is_directory=True)
    evaluate(model, suite, backend="hf", heldout=str(setup["heldout"]), log=lambda m: None)

    verdict = decide(model, th, source)
    missing = [c["detail"] for c in verdict["checks"] if c["metric"] and c.get("value") is None]
    assert missing == [], missing
    # the same metrics with limits any value meets: only a missing score could reject now
    lenient = th.model_copy(update={"min_scores": {k: 0.0 for k in th.min_scores},
                                    "max_perplexity": {k: float("inf") for k in th.max_perplexity}})
    again = decide(model, lenient, {"path": "lenient", "sha256": "", "content": {}})
    assert again["verdict"] == "promoted", again["reasons"]
