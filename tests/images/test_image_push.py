"""`infratech images push STACK` against a real registry on 127.0.0.1: Debian's docker-registry
(distribution 2.8) with its storage in a temporary directory. The training image lands there with
the digest `make images` recorded, and the chart values written point at it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from infratech.cli import main

pytestmark = pytest.mark.images
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def local_registry(tmp_path):
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text(yaml.safe_dump({"version": 0.1, "log": {"level": "error"},
                                      "storage": {"filesystem": {"rootdirectory": str(tmp_path / "blobs")}},
                                      "http": {"addr": f"127.0.0.1:{port}"}}))
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_push_copies_the_image_with_its_digest_and_writes_the_chart_values(train_image, local_registry, tmp_path, capsys):
    registry = f"{local_registry}/infratech-souveraine"
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.ovh-gra11.yaml").read_text())
    stack["config"]["infratech:platform"] = {"image_registry": registry}
    stack["config"]["infratech:policy"] = {"allowed_registries": [f"{registry}/"]}
    (project / "stacks" / "Pulumi.local.yaml").write_text(yaml.safe_dump(stack))
    only_train = tmp_path / "images.lock"
    only_train.write_text(json.dumps({"images": {"llm-train:cpu": train_image}}))

    assert main(["--project-dir", str(project), "images", "push", "local", "--lock", str(only_train), "--no-tls-verify"]) == 0
    out = capsys.readouterr()
    assert f"{registry}/llm-train@{train_image['digest']}" in out.out
    assert "llm-eval, llm-serve were built (cpu)" in out.err  # a partial build: those charts are not pinned
    values = yaml.safe_load((project / "build/images/local/values-llm-train-cpu.yaml").read_text())
    assert values == {"image": {"repository": f"{registry}/llm-train", "digest": train_image["digest"]}}

    remote = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{registry}/llm-train:0.1.0-cpu"],
                            capture_output=True, text=True, check=True)
    assert json.loads(remote.stdout)["Digest"] == train_image["digest"], "the registry holds other bytes than were built"
