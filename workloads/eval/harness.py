"""lm-evaluation-harness as a library: one model load, one ``simple_evaluate`` per shot count.

``hf`` runs transformers in this process (CPU or GPU); ``vllm`` runs vLLM's offline engine in this
process (a GPU image with vLLM installed). The local tasks of ``tasks/`` are added to the harness's
own with ``TaskManager(include_path=...)``.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import UserError
from .suites import TASKS_DIR, Suite

_NOT_METRICS = {"alias", "name", "sample_len", "sample_count", " ", ""}


def model_args(model_dir: Path, suite: Suite, backend: str) -> dict:
    if backend == "hf":
        b = suite.hf
        return {"pretrained": str(model_dir), "dtype": b.dtype, "device": b.device, "batch_size": b.batch_size}
    b = suite.vllm
    args = {"pretrained": str(model_dir), "dtype": b.dtype, "tensor_parallel_size": b.tensor_parallel_size,
            "gpu_memory_utilization": b.gpu_memory_utilization, "batch_size": b.batch_size, "seed": suite.seed}
    if b.max_model_len:
        args["max_model_len"] = b.max_model_len
    return args


def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS_DIR))


def check_tasks(suite: Suite, tm) -> None:
    known = set(tm.all_tasks)
    unknown = [t.name for t in suite.tasks if t.name not in known]
    if unknown:
        local = sorted(n for n in known if n.startswith("infratech_"))
        raise UserError(f"suite {suite.name}: unknown task(s) {', '.join(unknown)}; local tasks: {', '.join(local)}; "
                        "upstream names as in `lm_eval ls tasks`")


def run(model_dir: Path, suite: Suite, backend: str, limit: int | None = None) -> dict:
    """Raw lm-eval outputs merged over the suite's shot counts (``results``, ``n-samples``, ...)."""
    import lm_eval
    from lm_eval.api.registry import get_model

    tm = task_manager()
    check_tasks(suite, tm)
    args = model_args(model_dir, suite, backend)
    if backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise UserError("--backend vllm needs vLLM in this environment (the GPU image has it); "
                            "on CPU use --backend hf") from None
    lm = get_model(backend).create_from_arg_obj(args)
    merged: dict = {"results": {}, "groups": {}, "n-samples": {}, "n-shot": {}, "higher_is_better": {},
                    "versions": {}}
    for shots, names in suite.by_fewshot().items():
        try:
            out = lm_eval.simple_evaluate(
                model=lm, tasks=names, num_fewshot=shots, limit=limit or suite.limit, task_manager=tm,
                log_samples=False, bootstrap_iters=suite.bootstrap_iters, random_seed=suite.seed,
                numpy_random_seed=suite.seed, torch_random_seed=suite.seed, fewshot_random_seed=suite.seed,
            )
        except ConnectionError as exc:  # datasets' offline / unreachable Hub errors derive from it
            raise UserError(f"task(s) {', '.join(names)}: their dataset could not be loaded ({exc}). Upstream "
                            "tasks read the Hugging Face Hub: pre-cache the datasets (HF_DATASETS_CACHE) and run "
                            "with HF_DATASETS_OFFLINE=1, or evaluate the local tasks (suite cpu_smoke)") from None
        for key in ("results", "groups", "n-samples", "n-shot", "higher_is_better", "versions"):
            merged[key].update(out.get(key) or {})
        merged["lm_eval_version"] = out.get("lm_eval_version")
    merged["model_args"] = {k: v for k, v in args.items() if k != "pretrained"}
    return merged


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def scores(raw: dict) -> dict[str, dict]:
    """``{"task/metric": {"value", "stderr", "higher_is_better", "n", "num_fewshot"}}`` (a filter other
    than ``none`` is kept in the name: ``task/metric,filter``)."""
    out = {}
    for task, metrics in raw["results"].items():
        n = raw["n-samples"].get(task, {}).get("effective", metrics.get("sample_len"))
        for key, value in metrics.items():
            if key in _NOT_METRICS or "," not in key or "_stderr," in key:
                continue
            metric, _, filt = key.partition(",")
            name = f"{task}/{metric}" if filt == "none" else f"{task}/{metric},{filt}"
            out[name] = {
                "value": _number(value),
                "stderr": _number(metrics.get(f"{metric}_stderr,{filt}")),
                "higher_is_better": raw["higher_is_better"].get(task, {}).get(metric),
                "n": n,
                "num_fewshot": raw["n-shot"].get(task),
            }
    return dict(sorted(out.items()))
