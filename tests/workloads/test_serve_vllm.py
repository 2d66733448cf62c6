"""vLLM's OpenAI server started by our launcher on CPU, asked through the official openai client.

One server for the whole module (about a minute to start on 2 cores): a random-weight tiny Llama
(head_dim 32, vocab 512) with a promotion verdict, the cpu profile, an API key. Answers are noise;
what is tested is the service: completions and chat completions, the key, 4xx (never 5xx) for
malformed requests, and that it still answers after a burst of 200 concurrent requests.
The server comes from .venv-serve (`make serve-env`); without it these tests skip, except in CI
where they fail.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

openai = pytest.importorskip("openai")

from workloads.eval import modelfiles  # noqa: E402
from workloads.gate import decide as gate  # noqa: E402
from workloads.gate import thresholds as th_mod  # noqa: E402
from workloads.serve import launcher  # noqa: E402
from workloads.serve import profile as prof  # noqa: E402
from workloads.serve.random_model import random_llama  # noqa: E402
from workloads_fakes import vllm_python_or_skip  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SERVED = "tiny-fr"
KEY = "serve-test-key-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    python = vllm_python_or_skip()
    root = tmp_path_factory.mktemp("serve")
    model = random_llama(root / "tiny-fr", "tiny", dtype="float32", seed=0)
    # evidence and a verdict, as the gate writes them (the evaluation itself is tested elsewhere)
    files = modelfiles.model_files(model)
    (model / "evaluation").mkdir()
    (model / "evaluation" / "results.json").write_text(json.dumps({
        "model": {"files": files, "fingerprint": modelfiles.fingerprint(files)}, "suite": {"name": "cpu_smoke"},
        "scores": {"heldout/perplexity": {"value": 512.0, "higher_is_better": False}}}))
    (root / "th.yaml").write_text("max_perplexity: {heldout: 1000}\n")
    assert gate.decide(model, *th_mod.load(str(root / "th.yaml")))["promoted"]
    (root / "key").write_text(KEY)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    plan = launcher.plan(str(model), prof.load("cpu", port=port), served_name=SERVED,
                         api_key_file=str(root / "key"), python=python)
    srv = launcher.Server(plan, log_path=root / "vllm.log")
    srv.start()
    try:
        srv.wait_ready()
        print(f"\nvLLM CPU server ready after {srv.startup_s}s")
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.plan.base_url}/v1", api_key=KEY, max_retries=0, timeout=60)


def _raw(server, path: str, body: bytes | None = None, key: str | None = KEY,
         content_type: str = "application/json") -> tuple[int, str]:
    headers = {"Content-Type": content_type}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(server.plan.base_url + path, data=body, headers=headers,
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_launcher_reports_a_healthy_server_serving_our_name(server, client):
    assert server.startup_s is not None and server.startup_s < server.plan.startup_timeout_s
    assert [m.id for m in client.models.list().data] == [SERVED]
    assert _raw(server, "/health", key=None)[0] == 200


def test_completions(client):
    out = client.completions.create(model=SERVED, prompt="Le chat regarde la ville", max_tokens=8, temperature=0)
    assert out.model == SERVED and out.object == "text_completion"
    choice = out.choices[0]
    assert isinstance(choice.text, str) and choice.finish_reason in ("length", "stop")
    assert 1 <= out.usage.completion_tokens <= 8 and out.usage.prompt_tokens > 0
    again = client.completions.create(model=SERVED, prompt="Le chat regarde la ville", max_tokens=8, temperature=0)
    assert again.choices[0].text == choice.text  # greedy decoding is deterministic


def test_chat_completions_through_the_profiles_template(client):
    out = client.chat.completions.create(model=SERVED, max_tokens=8, temperature=0, messages=[
        {"role": "system", "content": "Tu réponds en français."},
        {"role": "user", "content": "Bonjour, où va le train ?"}])
    msg = out.choices[0].message
    assert msg.role == "assistant" and isinstance(msg.content, str)
    # the prompt is the template's rendering: its headers count in the prompt tokens
    assert out.usage.prompt_tokens > len("Bonjour, où va le train ?") // 2


def test_streaming_completion(client):
    chunks = list(client.completions.create(model=SERVED, prompt="Bonjour", max_tokens=6, temperature=0,
                                            stream=True))
    assert len(chunks) >= 2 and all(c.model == SERVED for c in chunks)


def test_requests_without_the_right_key_are_refused(server):
    wrong = openai.OpenAI(base_url=f"{server.plan.base_url}/v1", api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        wrong.completions.create(model=SERVED, prompt="x", max_tokens=2)
    assert err.value.status_code == 401
    # no Authorization header at all (the openai client will not send a request without a key)
    assert _raw(server, "/v1/models", key=None)[0] == 401
    assert _raw(server, "/v1/completions", b'{"model": "tiny-fr", "prompt": "x"}', key=None)[0] == 401
    assert _raw(server, "/v1/chat/completions", b'{"model": "tiny-fr", "messages": []}', key="nope")[0] == 401


@pytest.mark.parametrize("body", [
    b'{"model": "tiny-fr", "prompt": ',                                       # truncated JSON
    b"not json at all",
    b"[]",
    b"{}",
    b'{"model": "tiny-fr", "prompt": "x", "max_tokens": -1}',
    b'{"model": "tiny-fr", "prompt": "x", "max_tokens": 0}',
    b'{"model": "tiny-fr", "prompt": "x", "max_tokens": 100000}',            # beyond max_model_len
    b'{"model": "tiny-fr", "prompt": "x", "temperature": -2}',
    b'{"model": "tiny-fr", "prompt": [99999999]}',                           # token id out of vocabulary
    b'{"model": "tiny-fr", "prompt": "x", "n": 0}',
])
def test_malformed_completions_get_4xx_never_5xx(server, body):
    code, text = _raw(server, "/v1/completions", body)
    assert 400 <= code < 500, (code, text)


@pytest.mark.parametrize("body", [
    b'{"model": "tiny-fr", "messages": "bonjour"}',
    b'{"model": "tiny-fr", "messages": [{"content": "no role"}]}',
    b'{"model": "tiny-fr", "messages": [{"role": "user", "content": "x"}], "max_tokens": -5}',
    b'{"model": "tiny-fr", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": -5}',
])
def test_malformed_chat_completions_get_4xx_never_5xx(server, body):
    code, text = _raw(server, "/v1/chat/completions", body)
    assert 400 <= code < 500, (code, text)


def test_client_side_errors_through_the_openai_client(client, server):
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=SERVED, prompt="x", max_tokens=-1)
    with pytest.raises(openai.NotFoundError) as err:
        client.completions.create(model="gpt-4o", prompt="x", max_tokens=2)
    assert err.value.status_code == 404 and SERVED in str(err.value)
    assert 400 <= _raw(server, "/v1/completions", b"prompt=x", content_type="text/plain")[0] < 500


def test_a_burst_of_200_concurrent_requests_then_it_still_answers(server, client):
    async def burst():
        aclient = openai.AsyncOpenAI(base_url=f"{server.plan.base_url}/v1", api_key=KEY, max_retries=0, timeout=300)

        async def one(i: int):
            if i % 2:
                r = await aclient.chat.completions.create(model=SERVED, max_tokens=8, temperature=0.7,
                                                          messages=[{"role": "user", "content": f"Question {i} ?"}])
            else:
                r = await aclient.completions.create(model=SERVED, prompt=f"Requête numéro {i} :", max_tokens=8)
            return r.usage.completion_tokens

        try:
            return await asyncio.gather(*(one(i) for i in range(200)), return_exceptions=True)
        finally:
            await aclient.close()

    t0 = time.monotonic()
    # a loop of its own, not asyncio.run: that one leaves the main thread without a current event
    # loop, and later tests in the same run (the Pulumi mock runtime of tests/charts) need one
    loop = asyncio.new_event_loop()
    try:
        results = loop.run_until_complete(burst())
    finally:
        loop.close()
    seconds = time.monotonic() - t0
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures[:3]
    print(f"\n200 concurrent requests in {seconds:.1f}s, {sum(results)} completion tokens")
    assert server.proc.poll() is None
    assert _raw(server, "/health", key=None)[0] == 200
    after = client.completions.create(model=SERVED, prompt="Encore là ?", max_tokens=4, temperature=0)
    assert after.usage.completion_tokens >= 1


def test_prometheus_metrics_for_the_autoscaler(server, client):
    code, text = _raw(server, "/metrics", key=None)
    assert code == 200
    for metric in ("vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc"):
        assert metric in text, metric
    assert f'model_name="{SERVED}"' in text


def test_the_throughput_benchmark_measures_this_server_with_vllms_client(server):
    """benchmarks/serve_throughput.py's client path (vLLM's `bench serve` code) on the CPU server."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("serve_throughput", REPO / "benchmarks" / "serve_throughput.py")
    bench_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_mod)
    plan = server.plan
    result = bench_mod.bench(plan.command[0], plan.base_url, plan.served_name, plan.model_dir, plan.api_key,
                             num_prompts=16, input_len=16, output_len=8, concurrency=8, prefix_len=8)
    assert result["completed"] == 16 and result["failed"] == 0
    assert result["output_throughput"] > 0 and result["median_ttft_ms"] > 0 and result["p99_ttft_ms"] > 0
    assert result["median_itl_ms"] > 0 and result["p99_itl_ms"] >= result["median_itl_ms"]
