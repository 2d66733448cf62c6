"""The evaluation image runs the gate on the checkpoint trained inside the training image; the
serving image starts vLLM's CPU server through workloads.serve and answers through the openai client."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest

from images_harness import in_image

from infratech.images.runner import config, nspawn_command

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


def test_the_serving_image_answers_through_the_openai_client(serve_image, trained, shared_work):
    import openai

    port, key = _free_port(), secrets.token_hex(16)
    ctr = subprocess.run(["buildah", "from", "--pull-never", serve_image["ref"]], capture_output=True, text=True,
                         check=True).stdout.strip()
    log = open(shared_work / "serve.log", "w")
    try:
        mnt = Path(subprocess.run(["buildah", "mount", ctr], capture_output=True, text=True, check=True).stdout.strip())
        cmd = nspawn_command(mnt, config(serve_image["ref"]),
                             ["python", "-m", "workloads.serve", "/work/model", "--profile", "cpu", "--force",
                              "--served-name", "debug-tiny", "--port", str(port), "--host", "127.0.0.1"],
                             binds=(f"{shared_work}:/work",), env={"VLLM_API_KEY": key})
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
        comp = client.completions.create(model="debug-tiny", prompt="Le chat", max_tokens=4, temperature=0)
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
