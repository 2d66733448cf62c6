"""`infratech submit` runs exactly the images `make images` built: the digests of images.lock, in
the stack's registry, for the job's variant; a missing lock or image is an error naming the file,
the image and the build; `--image` is the explicit override. Renders with the real helm and chart."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from infratech.cli.submit import cli, images, models, render
from infratech.policy.model import walk

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "jobs"
sys.path.insert(0, str(ROOT / "tests" / "charts"))
from chart_harness import helm  # noqa: E402

OVERRIDE = "registry.example.fr/team/llm-train@sha256:" + "cd" * 32


def submit(project, argv, capsys):
    helm()  # skips, saying why, without helm
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command", required=True), "ovh-gra11")
    code = cli.run(parser.parse_args(argv), project, cluster_factory=lambda context: None)
    out = capsys.readouterr()
    return code, out.out, out.err


def images_run(manifests: str) -> set[str]:
    """Every ``image`` of the rendered objects (containers, init containers, a TrainJob's trainer)."""
    return {v for obj in render.documents(manifests) for path, v in walk(obj)
            if isinstance(v, str) and (path == "image" or path.endswith(".image"))}


def test_a_gpu_training_job_runs_the_built_cuda_image_by_digest_and_says_it_comes_from_abroad(project, default_plan, built_images, capsys):
    _, digests = built_images
    code, out, err = submit(project, ["submit", "train", str(EXAMPLES / "train-tiny.yaml"), "--dry-run"], capsys)
    assert code == 0, err
    assert images_run(out) == {f"ghcr.io/infratech-souveraine/llm-train@{digests['llm-train:cuda']}"}
    assert "has no platform.image_registry: the job pulls its images from ghcr.io/infratech-souveraine (abroad)" in err


def test_a_cpu_evaluation_runs_the_cpu_build_and_variant_chooses_another(project, default_plan, built_images, capsys):
    _, digests = built_images
    job = str(EXAMPLES / "eval-tiny.yaml")  # gpus.count: 0
    code, out, err = submit(project, ["submit", "eval", job, "--dry-run"], capsys)
    assert code == 0, err
    assert images_run(out) == {f"ghcr.io/infratech-souveraine/llm-eval@{digests['llm-eval:cpu']}"}
    code, out, err = submit(project, ["submit", "eval", job, "--dry-run", "--variant", "cuda"], capsys)
    assert code == 0, err
    assert images_run(out) == {f"ghcr.io/infratech-souveraine/llm-eval@{digests['llm-eval:cuda']}"}


def test_serving_runs_the_serving_image_in_its_init_step_and_its_server(project, default_plan, built_images, capsys):
    _, digests = built_images
    code, out, err = submit(project, ["submit", "serve", str(EXAMPLES / "serve-tiny.yaml"), "--dry-run"], capsys)
    assert code == 0, err
    assert images_run(out) == {f"ghcr.io/infratech-souveraine/llm-serve@{digests['llm-serve:cuda']}"}


def test_without_images_lock_it_names_the_file_the_image_and_make_images(project, default_plan, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "images.lock"
    code, out, err = submit(project, ["submit", "train", str(EXAMPLES / "train-tiny.yaml"), "--dry-run", "--images-lock", str(missing)], capsys)
    assert code == 2 and out == ""
    assert f"{missing}: no such file, so no digest for llm-train:cuda" in err
    assert "sudo make images VARIANT=cuda" in err and "--image REF" in err
    assert "Traceback" not in err


def test_a_lock_without_the_jobs_image_names_the_file_and_the_image(project, default_plan, built_images, capsys):
    path, _ = built_images
    data = json.loads(path.read_text())
    del data["images"]["llm-serve:cuda"]
    path.write_text(json.dumps(data))
    code, out, err = submit(project, ["submit", "serve", str(EXAMPLES / "serve-tiny.yaml"), "--dry-run"], capsys)
    assert code == 2 and out == ""
    assert f"{path} has no image llm-serve:cuda (chart llm-serve); build it with `sudo make images VARIANT=cuda`" in err


def test_image_overrides_the_build_without_needing_a_lock(project, default_plan, tmp_path, capsys):
    missing = tmp_path / "images.lock"
    code, out, err = submit(project, ["submit", "train", str(EXAMPLES / "train-tiny.yaml"), "--dry-run",
                                      "--images-lock", str(missing), "--image", OVERRIDE], capsys)
    assert code == 0, err
    assert images_run(out) == {OVERRIDE}
    assert f"llm-train runs {OVERRIDE} as given by --image; {missing} is not read" in err


def test_an_unpinned_override_is_refused_naming_the_option(project, default_plan, capsys):
    code, out, err = submit(project, ["submit", "train", str(EXAMPLES / "train-tiny.yaml"), "--dry-run",
                                      "--image", "registry.example.fr/team/llm-train:latest"], capsys)
    assert code == 2 and out == ""
    assert "--image: 'registry.example.fr/team/llm-train:latest': must be a full image reference pinned" in err


def test_a_stack_with_its_own_registry_pulls_from_it_without_a_note(built_images):
    path, digests = built_images
    job = models.load("train", EXAMPLES / "train-tiny.yaml")
    pins = images.pinned("train", job, "scaleway-fr-par-2-h100", "rg.fr-par.scw.cloud/infratech-souveraine", path)
    assert pins.values == {"image": {"repository": "rg.fr-par.scw.cloud/infratech-souveraine/llm-train",
                                     "digest": digests["llm-train:cuda"]}}
    assert pins.notes == ()


def test_the_team_description_says_where_the_stacks_images_come_from(project, default_plan):
    """What `infratech submit` reads the registry from (both from the cluster and from the plan)."""
    pytest.importorskip("pulumi")
    from infratech.cli.plan import record

    scaleway = record(project, "scaleway-fr-par-2-h100").outputs["team_descriptions"]
    assert {d["image_registry"] for d in scaleway.values()} == {"rg.fr-par.scw.cloud/infratech-souveraine"}
    assert {d["image_registry"] for d in default_plan.outputs["team_descriptions"].values()} == {None}
