from __future__ import annotations

import os
from pathlib import Path

import pytest

from infratech.cli.plan import record
from infratech.cli.stacks import find_project

ROOT = Path(__file__).resolve().parents[1]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI (``CI=true``, as .ci/run runs), a test that skips because a tool or the upstream
    data is missing fails instead: CI installs everything the suite needs, so a skip there is a
    missing install step, not a choice. Tests marked ``gpu`` may skip anywhere (CI has no GPU)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") == "true" and item.get_closest_marker("gpu") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where nothing may be missing: {reason}"


@pytest.fixture(scope="session")
def project():
    return find_project(ROOT)


@pytest.fixture(scope="session")
def default_plan(project):
    """The default stack recorded once for the whole session (the runtime is process-global)."""
    return record(project, "ovh-gra11")


@pytest.fixture
def variant(project, tmp_path):
    """Record a shipped stack after editing its ``config:`` mapping in place (``edit(config)``):
    how a user's own settings reach the declared resources."""
    import yaml

    from infratech.cli.stacks import Project

    def record_variant(stack: str, edit):
        data = yaml.safe_load(project.stack_file(stack).read_text(encoding="utf-8"))
        edit(data["config"])
        stack_dir = tmp_path / f"stacks-{stack}"
        stack_dir.mkdir(exist_ok=True)
        (stack_dir / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
        return record(Project(root=project.root, name=project.name, stack_dir=stack_dir, main=project.main), stack)

    return record_variant


@pytest.fixture
def built_images(tmp_path, monkeypatch):
    """An images lock as `make images` records it (registry.record, the build's own writer), for
    both variants of the three images, made the project's default lock for this test: submissions
    run these digests. Returns (path, {"llm-train:cuda": digest, …}); each digest is distinct."""
    import hashlib

    from infratech.images import registry, spec

    path = tmp_path / "images.lock"
    digests = {}
    for image in spec.IMAGES.values():
        for variant in spec.VARIANTS:
            key = f"{image.name}:{variant}"
            digests[key] = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
            registry.record(path, {"image": image.name, "variant": variant, "ref": image.local_ref(variant),
                                   "digest": digests[key], "lock": str(image.lock(ROOT, variant).relative_to(ROOT))})
    monkeypatch.setattr(registry, "DEFAULT_LOCK", path)
    return path, digests
