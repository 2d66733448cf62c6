"""Local stand-ins for the Hugging Face Hub datasets of the upstream lm-eval tasks a shipped suite
names (imported by basename, like ``workloads_fakes``).

Each stand-in is a task file that ``include:``s lm-eval's own YAML for that task (its prompts,
splits, metrics, tags and group membership stay upstream's) and replaces only where the rows come
from: a few JSON lines with the columns that task reads. Put the folder last in
``TaskManager(include_path=...)``: a later path overrides a task of the same name.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

_WORDS = ("le chat la ville une maison des enfants le soleil la mer un livre les arbres la route "
          "un jardin la nuit le pain").split()


def _text(rng: random.Random, n: int = 8) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def _mc4(rng, i):  # FrenchBench grammar and vocabulary
    return {"question": f"{_text(rng, 4)} <...> {_text(rng, 3)}.", **{f"answer{c}": _text(rng, 1) for c in "ABCD"},
            "answer": rng.choice("ABCD")}


def _arc_challenge(rng, i):
    return {"question": _text(rng), "choices": [_text(rng, 3) for _ in range(4)], "answerKey": rng.choice("ABCD")}


def _hellaswag(rng, i):
    return {"ctx_a": _text(rng, 6), "ctx_b": _text(rng, 3), "activity_label": _text(rng, 2),
            "endings": [_text(rng, 4) for _ in range(4)], "label": str(rng.randrange(4))}


def _okapi_arc(rng, i):
    return {"id": f"q{i}", "instruction": _text(rng), **{f"option_{c}": _text(rng, 3) for c in "abcd"},
            "option_e": "", "answer": rng.choice("ABCD")}


def _okapi_mmlu(rng, i):
    return {"instruction": _text(rng), **{f"option_{c}": _text(rng, 3) for c in "abcd"}, "answer": rng.choice("ABCD")}


# task -> (row maker, splits). Split sizes: 26 rows where a task draws up to 25 shots, 6 scored.
STANDINS = {
    "french_bench_arc_challenge": (_arc_challenge, {"train": 26, "validation": 6, "test": 6}),
    "french_bench_grammar": (_mc4, {"Grammar": 12}),
    "french_bench_vocab": (_mc4, {"Vocabulary": 12}),
    "french_bench_hellaswag": (_hellaswag, {"validation": 12}),
    "arc_fr": (_okapi_arc, {"train": 26, "validation": 6, "test": 6}),
    "m_mmlu_fr": (_okapi_mmlu, {"train": 26, "test": 6}),
    "hellaswag_fr": (_hellaswag, {"val": 16}),
    "french_bench_opus_perplexity": (lambda rng, i: {"text": _text(rng, 12)}, {"validation": 4, "test": 4}),
    "french_bench_wikitext_fr": (lambda rng, i: {"paragraph": _text(rng, 20)},
                                 {"train": 4, "validation": 4, "test": 4}),
}


def write_standins(task_manager, out: Path, seed: int = 0) -> Path:
    """Task files and data for every task of ``STANDINS`` under ``out``; returns ``out``."""
    rng = random.Random(seed)
    for task, (row, splits) in STANDINS.items():
        upstream = task_manager.task_index[task].yaml_path
        files = {}
        for split, n in splits.items():
            path = out / "data" / f"{task}.{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(row(rng, i)) + "\n" for i in range(n)))
            files[split] = str(path)
        cfg = {"include": str(upstream), "task": task, "dataset_path": "json", "dataset_name": None,
               "dataset_kwargs": {"data_files": files}}
        (out / f"{task}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out
