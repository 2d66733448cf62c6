"""The model's whole life on one CPU machine, with the tiny recipe (``make pipeline``):

    prepare data -> train (2 processes, interrupted) -> resume -> export -> evaluate -> gate
    -> run report -> serve with vLLM -> a few requests with the openai client -> where everything is

    python -m workloads.pipeline [--workdir build/pipeline] [--steps 40] [--keep-serving | --no-serve]

Every stage is the command a user would type (``python -m workloads.data``, ``torchrun ... -m
workloads.train``, ``python -m workloads.train.export``, ``python -m workloads.eval``, the serving
launcher), run as a subprocess with its output in ``<workdir>/logs``. A rerun reuses what the
working directory holds (a prepared dataset, a finished run, an export, an evaluation with its
verdict) and says so; delete the directory to start again. vLLM comes from ``.venv-serve``
(``make serve-env``). A few minutes on 2 cores, a minute of it vLLM's start.

Where it stands is shown by ``workloads.progress``: on a terminal a live line (the stage, its time,
training steps done / total), in CI and logs one plain line per event; a summary at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import UserError
from ..progress import Progress

RECIPE = "debug_tiny"
STAGES: list[tuple[str, float, str]] = []  # (stage, seconds, what happened)
PROGRESS = Progress("pipeline", stream=sys.stdout)  # main() makes a fresh one per run


def _log(msg: str) -> None:
    PROGRESS.log(msg)


def _begin(name: str, total: int | None = None) -> None:
    PROGRESS.start(name, total)


def _stage(name: str, what: str) -> None:
    ph = PROGRESS.current
    PROGRESS.end(what)
    STAGES.append((name, ph.seconds if ph is not None else 0.0, what))


def _last_step(metrics: Path) -> int | None:
    try:
        lines = metrics.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _run(cmd: list[str], log: Path, *, env: dict | None = None, ok: tuple[int, ...] = (0,),
         watch=None) -> int:
    """Run a stage's command with its output in ``log``; ``watch()`` is called every second while
    it runs (to report steps done)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        fh.write(("\n$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                stdin=subprocess.DEVNULL)
        while True:
            try:
                rc = proc.wait(timeout=1.0 if watch else None)
                break
            except subprocess.TimeoutExpired:
                watch()
    if rc not in ok:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise UserError(f"`{' '.join(cmd[:6])} ...` exited with {rc}; {log} ends with:\n{tail}")
    return rc


def _committed_steps(ckpt_dir: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in ckpt_dir.glob("step-*") if (p / "checkpoint.json").is_file())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _servable_on_cpu() -> None:
    """Fail in a second, not after training, when vLLM's CPU build cannot run the recipe's model."""
    from ..serve.launcher import CPU_HEAD_SIZES
    from ..train import recipes

    arch = recipes.get(RECIPE).model.arch
    heads = max(1, arch.hidden_size // 32)
    if arch.head_dim not in CPU_HEAD_SIZES:
        raise UserError(f"recipe {RECIPE} has head_dim {arch.head_dim} (hidden {arch.hidden_size} / {arch.num_heads} "
                        f"heads); vLLM's CPU attention takes {', '.join(map(str, CPU_HEAD_SIZES))}, so the served "
                        f"model would fail every request. With num_heads={heads} and num_kv_heads="
                        f"{max(1, heads * arch.num_kv_heads // arch.num_heads)} (head_dim 32, same parameter "
                        "count) it would serve; or run with --no-serve")


def prepare(work: Path, py: str) -> tuple[Path, Path]:
    _begin("data")
    train, heldout = work / "data" / "train", work / "data" / "heldout"
    if (train / "manifest.json").is_file() and (heldout / "manifest.json").is_file():
        _stage("data", f"reused {train} and {heldout}")
        return train, heldout
    logs = work / "logs" / "data.log"
    for name, docs, seed in (("train", 2000, 0), ("heldout", 200, 1)):  # another seed: sentences not trained on
        _run([py, "-m", "workloads.data", "synthetic", "--output", str(work / "corpus" / f"{name}.jsonl"),
              "--documents", str(docs), "--seed", str(seed)], logs)
    if not (train / "manifest.json").is_file():
        _run([py, "-m", "workloads.data", "prepare", "--input", str(work / "corpus" / "train.jsonl"), "--output",
              str(train), "--records", str(work / "corpus" / "train.jsonl.records.yaml"), "--vocab-size", "512", "--seq-len", "128", "--sequences-per-shard", "256"], logs)
    if not (heldout / "manifest.json").is_file():
        _run([py, "-m", "workloads.data", "prepare", "--input", str(work / "corpus" / "heldout.jsonl"), "--output",
              str(heldout), "--records", str(work / "corpus" / "heldout.jsonl.records.yaml"), "--tokenizer", str(train / "tokenizer"), "--seq-len", "128",
              "--sequences-per-shard", "64"], logs)
    sizes = [json.loads((d / "manifest.json").read_text())["totals"] for d in (train, heldout)]
    _stage("data", f"{sizes[0]['sequences']} training and {sizes[1]['sequences']} held-out sequences of 128 tokens "
                   f"(byte-level BPE of 512 tokens trained here)")
    return train, heldout


def train(work: Path, py: str, data: Path, steps: int) -> tuple[Path, int]:
    run = work / "run"
    every = max(steps // 4, 1)
    crash_at = 2 * every + every // 2
    cmd = [py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "workloads.train",
           "--recipe", RECIPE, f"run.dir={run}", f"data.path={data}", f"train.steps={steps}",
           f"checkpoint.every={every}", "export.at_end=false", "train.device=cpu"]
    logs = work / "logs" / "train.log"
    one_thread = {"OMP_NUM_THREADS": "1"}  # two processes on a laptop's cores, not 2 x all of them
    done = _committed_steps(run / "checkpoints")
    if (run / "config.json").is_file():
        from ..train import recipes

        made = json.loads((run / "config.json").read_text())["model"]["arch"]
        now = recipes.get(RECIPE).model.arch.model_dump(mode="json")
        if made != now:
            raise UserError(f"{run} was trained with another {RECIPE} architecture ({made}); the recipe now says "
                            f"{now}. Delete {work} to start again")
    _begin("train", total=steps)
    if done and done[-1] >= steps:
        _stage("train", f"reused {run} (trained to step {done[-1]})")
        _begin("resume")
        _stage("resume", "nothing to resume")
        return run, done[-1]

    def steps_done() -> None:
        PROGRESS.update(done=_last_step(run / "metrics.jsonl"), note=f"log: {logs}")

    if not done:
        # a node dies mid-run: the last rank SIGKILLs itself after crash_at (the trainer's fault hook)
        rc = _run(cmd, logs, env={**one_thread, "INFRATECH_TRAIN_FAULT": f"sigkill:{crash_at}"}, ok=(0, 1),
                  watch=steps_done)
        done = _committed_steps(run / "checkpoints")
        _stage("train", f"2 processes (FSDP2 over gloo); killed after step {crash_at} (exit {rc}), "
                        f"last complete checkpoint: step {done[-1] if done else None}")
    _begin("resume", total=steps)
    _run(cmd, logs, env=one_thread, watch=steps_done)
    after = _committed_steps(run / "checkpoints")
    _stage("resume", f"relaunched: continued from step {done[-1] if done else 0} to {after[-1]}")
    return run, after[-1]


def export(work: Path, py: str, run: Path, step: int) -> Path:
    _begin("export")
    model = work / "models" / f"{RECIPE}-step-{step:09d}"
    if (model / "config.json").is_file():
        _stage("export", f"reused {model}")
        return model
    _run([py, "-m", "workloads.train.export", str(run / "checkpoints" / f"step-{step:09d}"), str(model),
          "--dtype", "float32"], work / "logs" / "export.log")
    _stage("export", f"{model} (safetensors + config + tokenizer)")
    return model


def evaluate(work: Path, py: str, model: Path, heldout: Path) -> dict:
    from ..eval import modelfiles
    from ..eval.evaluate import load_results
    from ..gate.decide import status

    _begin("eval")
    results = load_results(model)
    ok, _, verdict = status(model)
    fresh = results and results["model"]["fingerprint"] == modelfiles.fingerprint(modelfiles.model_files(model))
    if fresh and verdict is not None:
        _stage("eval", f"reused {model}/evaluation (held-out perplexity "
                       f"{results['scores']['heldout/perplexity']['value']:.2f})")
        _begin("gate")
        _stage("gate", f"reused verdict: {verdict['verdict']}")
        return verdict
    _run([py, "-m", "workloads.eval", str(model), "--suite", "cpu_smoke", "--heldout", str(heldout),
          "--gate", RECIPE, "--registry", str(work / "promotions")], work / "logs" / "eval.log",
         env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    results = load_results(model)
    s = results["scores"]
    _stage("eval", f"held-out perplexity {s['heldout/perplexity']['value']:.2f}, infratech_fr acc "
                   f"{s['infratech_fr/acc']['value']:.3f} (lm-eval {results['lm_eval']['lm_eval_version']}, "
                   "hf, CPU)")
    _begin("gate")
    ok, reasons, verdict = status(model)
    _stage("gate", f"{verdict['verdict']}" + ("" if ok else ": " + "; ".join(reasons)))
    return verdict


def report(work: Path, py: str, run: Path, model: Path) -> Path:
    """The run report (figures, evaluation table with the gate's thresholds) and the model card."""
    from ..report import REPORT_DIR, REPORT_FILE

    _begin("report")
    path = model / REPORT_DIR / REPORT_FILE
    if path.is_file() and path.stat().st_mtime >= (model / "promotion.json").stat().st_mtime:
        _stage("report", f"reused {path}")
        return path
    _run([py, "-m", "workloads.report", str(run), "--model", str(model)], work / "logs" / "report.log")
    _stage("report", f"{path} (figures: loss, learning rate, throughput, perplexity) and the model card {model / 'README.md'}")
    return path


def serve_and_ask(work: Path, model: Path, keep: bool) -> None:
    import openai

    from ..serve import profile as prof
    from ..serve.launcher import Server, plan

    key_file = work / "api-key"
    if not key_file.is_file():
        key_file.write_text(secrets.token_hex(24) + "\n")
        key_file.chmod(0o600)
    _begin("serve")
    p = plan(str(model), prof.load("cpu", port=_free_port()), served_name="debug-tiny",
             api_key_file=str(key_file), log=_log)
    with Server(p, log_path=work / "logs" / "serve.log") as server:
        _stage("serve", f"vLLM ({Path(p.command[0]).parent.parent.name}) serving {p.served_name} at "
                        f"{p.base_url}/v1, healthy after {server.startup_s}s")
        _begin("requests")
        client = openai.OpenAI(base_url=f"{p.base_url}/v1", api_key=p.api_key, max_retries=0, timeout=60)
        models = [m.id for m in client.models.list().data]
        comp = client.completions.create(model=p.served_name, prompt="Le chat regarde", max_tokens=12, temperature=0)
        chat = client.chat.completions.create(model=p.served_name, max_tokens=12, temperature=0,
                                              messages=[{"role": "user", "content": "Où va le train ce matin ?"}])
        try:
            openai.OpenAI(base_url=f"{p.base_url}/v1", api_key="not-the-key", max_retries=0).models.list()
            refused = "NOT refused"
        except openai.AuthenticationError as exc:
            refused = f"refused ({exc.status_code})"
        _log(f"  models: {models}")
        _log(f"  completion  'Le chat regarde' -> {comp.choices[0].text!r}")
        _log(f"  chat        'Où va le train ce matin ?' -> {chat.choices[0].message.content!r}")
        _log(f"  a wrong API key: {refused}")
        _stage("requests", f"openai {openai.__version__}: models, completion ({comp.usage.completion_tokens} tokens), "
                           f"chat completion ({chat.usage.completion_tokens} tokens), wrong key {refused}")
        if keep:
            _log(f"serving until Ctrl-C: OPENAI_BASE_URL={p.base_url}/v1 OPENAI_API_KEY=$(cat {key_file})")
            try:
                server.proc.wait()
            except KeyboardInterrupt:
                pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m workloads.pipeline", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="build/pipeline")
    ap.add_argument("--steps", type=int, default=40, help="training steps (default 40, the recipe's)")
    ap.add_argument("--keep-serving", action="store_true", help="leave the server up until Ctrl-C")
    ap.add_argument("--no-serve", action="store_true", help="stop after the gate (no vLLM)")
    args = ap.parse_args(argv)
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    started = time.monotonic()
    global PROGRESS
    PROGRESS = Progress("pipeline", stream=sys.stdout)
    try:
        if not args.no_serve:
            _servable_on_cpu()
        train_data, heldout = prepare(work, py)
        run, step = train(work, py, train_data, args.steps)
        model = export(work, py, run, step)
        verdict = evaluate(work, py, model, heldout)
        report_md = report(work, py, run, model)  # rejected or not: the report says why
        if verdict["verdict"] != "promoted":
            raise UserError(f"the gate rejected {model}: " + "; ".join(verdict["reasons"])
                            + f" (see {model}/promotion.json); not served")
        if not args.no_serve:
            serve_and_ask(work, model, args.keep_serving)
    except UserError as exc:
        if PROGRESS.current is not None:
            PROGRESS.end("failed")
        print(f"error: {exc}", file=sys.stderr)
        return 2
    PROGRESS.changed(f"model {model}: {verdict['verdict']} by the gate")
    PROGRESS.changed(f"run report {report_md}")
    PROGRESS.summary()
    _log(f"done in {time.monotonic() - started:.0f}s. Where everything is:")
    for what, where in (
        ("training data", work / "data" / "train"), ("held-out data", work / "data" / "heldout"),
        ("training run (config, metrics, checkpoints)", run), ("exported model", model),
        ("evaluation results", model / "evaluation" / "results.json"),
        ("evaluation report", model / "evaluation" / "report.md"),
        ("run report (figures) and model card", model / "report" / "report.md"),
        ("promotion verdict", model / "promotion.json"), ("promotion registry", work / "promotions"),
        ("API key", work / "api-key"), ("logs (data, train, export, eval, report, serve)", work / "logs"),
    ):
        _log(f"  {what:<44} {where}")
    (work / "pipeline.json").write_text(json.dumps(
        {"stages": [{"stage": s, "seconds": round(sec, 1), "what": w} for s, sec, w in STAGES],
         "model": str(model), "total_s": round(time.monotonic() - started, 1)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
