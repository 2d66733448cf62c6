"""Serving: vLLM's OpenAI-compatible server, configured from a profile and launched by us.

- ``profile``: typed serving profiles (``profiles/cpu|l4|l40s|h100.yaml``) -> vLLM flags
- ``fetch``: model files from object storage into a local cache, each sha256-verified against the
  digests the promotion gate recorded
- ``launcher``: refuses an unpromoted model (unless forced with a reason), checks the architecture
  against the device, starts vLLM in its own process group and health-checks it

charts/llm-serve runs this package, not a copy of it: ``python -m workloads.serve fetch`` as each
replica's init step, ``python -m workloads.serve --profile NAME`` as its server.
- ``random_model``: random-weight Llama models for the throughput benchmark and the serving tests

The inference server is vLLM's; nothing here answers a request itself.
"""
