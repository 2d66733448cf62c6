"""The evaluation image runs the gate on the checkpoint trained inside the training image; the
serving image runs charts/llm-serve's two steps as the chart renders them (the init step's verified
fetch from a local object store, then the server, with the CPU profile in place of the GPU one) and
answers through the openai client."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from images_harness import in_image

from infratech.images import spec
from infratech.images.runner import config, nspawn_command, run_in_image

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.images


def test_the_evaluation_image_runs_the_gate_on_the_checkpoint(eval_image, trained, shared_work):
    proc = in_image(eval_image["ref"], "python", "-m", "workloads.eval", "/work/model", "--suite", "cpu_smoke",
                    "--heldout", "/work/data/heldout", "--gate", "debug_tiny", "--registry", "/work/promotions",
                    binds=(f"{shared_work}:/work",), timeout=900)
    verdict_file = trained / "promotion.json"
    assert verdict_file.is_file(), f"no verdict (exit {proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    verdict = json.loads(verdict_file.read_text())
    assert verdict["verdict"] in ("promoted", "rejected") and isinstance(verdict["promoted"], bool)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1: evaluated, and the gate refused
    results = json.loads((trained / "evaluation" / "results.json").read_text())
    assert "heldout/perplexity" in results["scores"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chart_steps() -> tuple[list[str], list[str]]:
    """The init step's and the server's argv as charts/llm-serve renders them, /models at /work/models."""
    sys.path.insert(0, str(ROOT / "tests" / "charts"))  # the chart tests' harness, also when run alone
    from chart_harness import CHARTS_DIR, one, rendered

    d = one(rendered("llm-serve", CHARTS_DIR / "llm-serve" / "ci" / "01-gateway-values.yaml", namespace="serving"),
            "Deployment")
    pod = d["spec"]["template"]["spec"]
    steps = []
    for c in (pod["initContainers"][0], pod["containers"][0]):
        mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "models")
        steps.append([a.replace(mount, "/work/models") for a in c["command"] + c["args"]])
    return steps[0], steps[1]


def test_the_serving_image_runs_the_charts_steps_and_answers_through_the_openai_client(serve_image, trained,
                                                                                       shared_work, monkeypatch):
    import openai

    sys.path.insert(0, str(ROOT / "tests" / "workloads"))
    from workloads_fakes import judge

    from workloads import objectstore

    # the trained export, judged by the real gate (crafted scores: this test is about serving it)
    # and published where the chart's model.uri points: s3://@checkpoints/pretraining/tiny/export
    source = shared_work / "serve-source" / "model"
    shutil.copytree(trained, source, ignore=shutil.ignore_patterns("evaluation", "promotion.json"))
    judge(source)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"file://{shared_work / 'store'}")
    objectstore.upload_dir(source, "s3://ckpt/pretraining/tiny/export", last=("promotion.json",))
    (shared_work / "models").mkdir()
    shutil.chown(shared_work / "models", spec.UID, spec.UID)  # the emptyDir, writable by the pod's user

    fetch, serve = _chart_steps()
    fetched = run_in_image(serve_image["ref"], fetch, binds=(f"{shared_work}:/work",), capture_output=True, text=True,
                           timeout=300, env={"AWS_ENDPOINT_URL": "file:///work/store", "S3_BUCKET_CHECKPOINTS": "ckpt"})
    assert fetched.returncode == 0, fetched.stdout[-2000:] + fetched.stderr[-2000:]
    # systemd-nspawn hands the payload's two streams to the caller as one (its stdout): read both
    assert "all sha256-verified" in fetched.stdout + fetched.stderr, fetched.stdout[-2000:] + fetched.stderr[-2000:]

    port, key = _free_port(), secrets.token_hex(16)
    # no GPU here: the CPU profile in place of the rendered GPU one, loopback and a free port
    replace = {"--profile=l40s": "--profile=cpu", "--host=0.0.0.0": "--host=127.0.0.1", "--port=8000": f"--port={port}"}
    assert set(replace) <= set(serve), serve
    command = [replace.get(a, a) for a in serve]
    ctr = subprocess.run(["buildah", "from", "--pull-never", serve_image["ref"]], capture_output=True, text=True,
                         check=True).stdout.strip()
    log = open(shared_work / "serve.log", "w")
    try:
        mnt = Path(subprocess.run(["buildah", "mount", ctr], capture_output=True, text=True, check=True).stdout.strip())
        cmd = nspawn_command(mnt, config(serve_image["ref"]), command, binds=(f"{shared_work}:/work",),
                             env={"VLLM_API_KEY": key})
        server = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=60)
        deadline, last = time.monotonic() + 420, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                client.models.list()
                break
            except openai.APIConnectionError as exc:
                last = exc
                time.sleep(3)
        assert server.poll() is None, f"the server exited: {(shared_work / 'serve.log').read_text()[-3000:]}"
        comp = client.completions.create(model="tiny", prompt="Le chat", max_tokens=4, temperature=0)
        assert comp.usage.completion_tokens > 0, last
    finally:
        if "server" in locals() and server.poll() is None:
            server.terminate()
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
        subprocess.run(["buildah", "rm", ctr], capture_output=True)
