"""`infratech mirror sync` against a real registry on 127.0.0.1 (Debian's docker-registry,
distribution 2.8, started here with its storage in a temporary directory), from OCI layouts this
test writes by hand: one per image the stack runs, one of them multi-architecture (an image index).
skopeo does every copy, as it would for a user; nothing is replaced by a double."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from infratech.cli.app import main
from infratech.cli.mirror import inventory, sync
from infratech.cli.plan import record
from infratech.cli.stacks import find_project, stack_config

PROJECT = find_project(Path(__file__).resolve().parents[2])
STACK = "ovh-gra11"
MULTI_ARCH = "quay.io/prometheus/prometheus:v3.14.0-distroless"


def _blob(layout: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _image(layout: Path, content: str, arch: str, payload: bytes = b"") -> dict:
    """A one-layer image whose one file says ``content`` (then ``payload``); its manifest's descriptor."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = content.encode() + payload
        info = tarfile.TarInfo("etc/image-name")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(layout, layer)}],
    }).encode()
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", **_blob(layout, manifest),
            "platform": {"architecture": arch, "os": "linux"}}


def write_layout(root: Path, ref: str, multi_arch: bool = False, payload: bytes = b"") -> str:
    """The OCI layout of ``ref`` at ``root/<host>/<path>`` (tag as its reference); its top digest.
    ``payload``: bytes added to the layer (benchmarks/mirror_sync.py sizes the images with it)."""
    name, _, tag = ref.rpartition(":")
    layout = root / name
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    if multi_arch:
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [_image(layout, ref, "amd64", payload), _image(layout, ref, "arm64", payload)]}).encode()
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", **_blob(layout, index)}
    else:
        top = {k: v for k, v in _image(layout, ref, "amd64", payload).items() if k != "platform"}
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return top["digest"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry(tmp_path):
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        pytest.skip("docker-registry and skopeo are needed (apt-get install docker-registry skopeo)")
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(yaml.safe_dump({"version": 0.1, "log": {"level": "error"},
                                      "storage": {"filesystem": {"rootdirectory": str(tmp_path / "storage")}},
                                      "http": {"addr": f"127.0.0.1:{port}"}}))
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30  # waiting for the server to listen, not a timed assertion
    while sync.reachable(f"127.0.0.1:{port}", 1.0) is not None:
        assert proc.poll() is None and time.monotonic() < deadline, "docker-registry did not start"
        time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def images() -> list[str]:
    cfg = stack_config(PROJECT, STACK)
    return [i.ref for i in inventory.collect(record(PROJECT, STACK), PROJECT.root, cfg.provider).images]


@pytest.fixture
def layouts(tmp_path, images) -> tuple[Path, dict]:
    root = tmp_path / "upstream"
    return root, {ref: write_layout(root, ref, multi_arch=(ref == MULTI_ARCH)) for ref in images}


def _sync(registry, source, lock, *extra) -> int:
    return main(["mirror", "sync", STACK, "--to", f"{registry}/infratech/mirror", "--from-dir", str(source),
                 "--lock", str(lock), "--no-tls-verify", "--retry-delay", "0", *extra])


def _remote_digest(ref: str) -> str:
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, check=True).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_sync_preserves_digests_and_a_rerun_copies_nothing(registry, layouts, tmp_path, capsys):
    source, digests = layouts
    assert MULTI_ARCH in digests and len(digests) > 20
    lock = tmp_path / "mirror.lock.json"
    assert _sync(registry, source, lock) == 0
    out = capsys.readouterr()
    assert f"{len(digests)} copied, 0 already there, 0 failed" in out.out
    assert f"copied {MULTI_ARCH} {digests[MULTI_ARCH]}" in out.err  # progress, one line per image
    data = json.loads(lock.read_text())["images"]
    assert {ref: e["digest"] for ref, e in data.items()} == digests
    for ref in (MULTI_ARCH, "nvcr.io/nvidia/driver:595.91.07", "quay.io/jetstack/cert-manager-controller:v1.21.1"):
        assert _remote_digest(f"{registry}/infratech/mirror/{ref}") == digests[ref], ref
    index = json.loads(subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                       f"docker://{registry}/infratech/mirror/{MULTI_ARCH}"], capture_output=True, check=True).stdout)
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]  # --all: every architecture

    storage = sorted(p.relative_to(tmp_path) for p in (tmp_path / "storage").rglob("*"))
    assert _sync(registry, source, lock) == 0
    assert f"0 copied, {len(digests)} already there, 0 failed" in capsys.readouterr().out
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "storage").rglob("*")) == storage


def test_a_failed_copy_is_retried_named_and_the_rest_goes_on_then_a_rerun_copies_only_it(registry, layouts, tmp_path, capsys):
    source, digests = layouts
    missing = "ghcr.io/kedacore/keda:2.20.2"
    shutil.move(source / missing.rpartition(":")[0], tmp_path / "aside")
    lock = tmp_path / "mirror.lock.json"
    assert _sync(registry, source, lock, "--retries", "1") == 3
    out = capsys.readouterr()
    assert f"{len(digests) - 1} copied, 0 already there, 1 failed" in out.out
    assert f"retry 1/1 {missing}" in out.err and f"FAILED {missing} after 2 attempt(s)" in out.err
    assert f"error: {missing} was not copied" in out.err
    assert missing not in json.loads(lock.read_text())["images"]

    shutil.move(tmp_path / "aside", source / missing.rpartition(":")[0])
    assert _sync(registry, source, lock) == 0
    assert f"1 copied, {len(digests) - 1} already there, 0 failed" in capsys.readouterr().out
    assert _remote_digest(f"{registry}/infratech/mirror/{missing}") == digests[missing]


def test_an_unreachable_registry_is_a_clear_error_and_the_lock_keeps_what_was_copied(registry, layouts, tmp_path, capsys):
    source, digests = layouts
    lock = tmp_path / "mirror.lock.json"
    assert _sync(registry, source, lock) == 0
    before = lock.read_text()
    capsys.readouterr()
    closed = f"127.0.0.1:{_free_port()}"
    assert _sync(closed, source, lock) == 3
    err = capsys.readouterr().err
    assert f"cannot reach the registry {closed}" in err and "nothing copied" in err and str(lock) in err
    assert lock.read_text() == before


def test_to_dir_then_from_dir_carries_the_images_on_a_disk(registry, layouts, tmp_path, capsys):
    source, digests = layouts
    disk = tmp_path / "disk"
    assert main(["mirror", "sync", STACK, "--to-dir", str(disk), "--from-dir", str(source),
                 "--lock", str(tmp_path / "disk.lock.json"), "--retry-delay", "0"]) == 0
    assert _sync(registry, disk, tmp_path / "mirror.lock.json") == 0
    assert _remote_digest(f"{registry}/infratech/mirror/{MULTI_ARCH}") == digests[MULTI_ARCH]


def test_a_registry_given_as_a_url_is_refused(capsys):
    assert main(["mirror", "sync", STACK, "--to", "https://registry.example.fr/"]) == 2
    assert "no scheme" in capsys.readouterr().err


def test_without_to_the_stacks_mirror_is_the_destination(registry, layouts, tmp_path, capsys):
    source, digests = layouts
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    shutil.copy(PROJECT.root / "Pulumi.yaml", project / "Pulumi.yaml")
    text = PROJECT.stack_file(STACK).read_text(encoding="utf-8")
    (project / "stacks" / f"Pulumi.{STACK}.yaml").write_text(
        text.rstrip("\n") + f"\n  infratech:mirror:\n    registry: {registry}\n    prefix: sovereign\n", encoding="utf-8")
    (project / "__main__.py").write_text((PROJECT.root / "__main__.py").read_text(encoding="utf-8"), encoding="utf-8")
    for shared in ("charts", "roles"):  # the bundled charts' images and the node roles' versions
        (project / shared).symlink_to(PROJECT.root / shared)
    args = ["--project-dir", str(project), "mirror", "sync", STACK, "--from-dir", str(source), "--no-tls-verify", "--retries", "0"]
    assert main(args) == 0
    assert f"{len(digests)} copied" in capsys.readouterr().out
    assert _remote_digest(f"{registry}/sovereign/{MULTI_ARCH}") == digests[MULTI_ARCH]
    assert (project / "build" / "mirror" / f"{STACK}.lock.json").is_file()
    assert main(["mirror", "sync", STACK]) == 2  # the shipped stack has no mirror: and no --to is given
    assert "has no mirror: settings" in capsys.readouterr().err
