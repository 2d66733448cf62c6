"""Kueue's waitForPodsReady against GPU pools that grow: an admitted job is not evicted while the
nodes it asked for are still booting (catalog `provisioning`), and a job that never gets ready stops
being requeued instead of blocking every admission in a loop."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml
from upstream import require_upstream

from infratech import catalog
from infratech.program.handle import ClusterHandle, PoolHandle
from infratech.cli.plan import record
from infratech.program.platform import kueue

RELEASE = "kubernetes:helm.sh/v3:Release"


def wait_for_pods_ready(rec) -> dict:
    values = next(r.inputs for r in rec.by_type(RELEASE) if r.inputs["name"] == "kueue")["values"]
    return yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])["waitForPodsReady"]


def minutes(duration: str) -> int:
    match = re.fullmatch(r"(\d+)m", duration)
    assert match, f"{duration!r}: expected whole minutes"
    return int(match.group(1))


def pool(name: str, gpu_model, lo: int, hi: int) -> PoolHandle:
    return PoolHandle(name=name, role="training" if gpu_model else "system", flavor="f", gpu_model=gpu_model,
                      gpus_per_node=1 if gpu_model else 0, min_nodes=lo, desired_nodes=lo, max_nodes=hi, labels={}, taints=())


def cluster(provider: str, *pools: PoolHandle) -> ClusterHandle:
    return ClusterHandle(provider=provider, region="r", kubeconfig=None, pools=pools, object_store=None,
                         driver_preinstalled=False, gpu_operator_preinstalled=False)


GROWING = (pool("system", None, 2, 3), pool("h100", "h100-80gb", 0, 4))
FIXED = (pool("system", None, 2, 3), pool("h100", "h100-80gb", 2, 2))


@pytest.mark.parametrize("stack,provider", [("ovh-gra11", "ovh"), ("scaleway-fr-par-2-h100", "scaleway")])
def test_should_wait_longer_than_the_providers_gpu_node_start(project, stack, provider):
    start = catalog.load().node_start(provider)
    timeout = minutes(wait_for_pods_ready(record(project, stack))["timeout"])
    # node Ready, then GPUs allocatable, then the image pulled and the pod started (more than 0)
    assert timeout > start.node_ready_minutes + start.gpu_ready_minutes


def test_an_ovh_gpu_node_is_planned_to_take_an_hour():
    """The figure the OVHcloud timeout rests on: its sources say an hour and more is possible."""
    start = catalog.load().node_start("ovh")
    assert start.node_ready_minutes >= 60 and start.node_ready_minutes >= start.typical_minutes
    assert {"ovh_docs_gpu_start", "ovh_tf_nodepool"} <= set(start.sources)


def test_should_follow_the_catalog_figure(monkeypatch):
    cat = catalog.load()
    before = kueue.pods_ready_timeout_minutes(cluster("ovh", *GROWING))
    slower = dataclasses.replace(cat.node_start("ovh"), node_ready_minutes=cat.node_start("ovh").node_ready_minutes + 30)
    monkeypatch.setattr(cat, "_node_start", {**cat._node_start, "ovh": slower})
    assert kueue.pods_ready_timeout_minutes(cluster("ovh", *GROWING)) == before + 30


def test_should_add_no_node_start_where_no_gpu_pool_grows():
    start = catalog.load().node_start("ovh")
    fixed = kueue.pods_ready_timeout_minutes(cluster("ovh", *FIXED))
    assert fixed + start.minutes == kueue.pods_ready_timeout_minutes(cluster("ovh", *GROWING))
    cpu_grows = (pool("system", None, 1, 5), pool("h100", "h100-80gb", 2, 2))
    assert kueue.pods_ready_timeout_minutes(cluster("ovh", *cpu_grows)) == fixed, "a CPU pool's growth does not delay GPU pods"
    # a pool at 1 that may grow to 4 scales up for a 4-node job just as a pool at 0 does
    assert kueue.pods_ready_timeout_minutes(cluster("ovh", pool("h100", "h100-80gb", 1, 4))) == fixed + start.minutes


def test_should_refuse_a_growing_gpu_pool_on_a_provider_without_a_figure():
    with pytest.raises(ValueError) as exc:
        kueue.pods_ready_timeout_minutes(cluster("outscale", *GROWING))
    message = str(exc.value)
    assert "h100" in message and "provisioning.gpu_node_start.outscale" in message
    assert "ovh" in message and "scaleway" in message, "names the providers that have a figure"
    assert kueue.pods_ready_timeout_minutes(cluster("outscale", *FIXED)) > 0, "fixed pools need no figure"


def test_should_stop_requeuing_and_keep_each_backoff_under_the_autoscalers_scale_down(project):
    conf = wait_for_pods_ready(record(project, "scaleway-fr-par-2-h100"))
    strategy = conf["requeuingStrategy"]
    assert strategy["timestamp"] == "Eviction", "a requeued job goes behind the others instead of blocking them again"
    limit = strategy.get("backoffLimitCount")
    assert isinstance(limit, int) and limit >= 1, "null requeues forever (Kueue v0.19.2 RequeuingStrategy)"
    # Kueue: about base * 2^(n-1) seconds for the n-th requeue, at most backoffMaxSeconds
    delays = [min(strategy["backoffBaseSeconds"] * 2 ** (n - 1), strategy["backoffMaxSeconds"]) for n in range(1, limit + 1)]
    text = project.stack_file("scaleway-fr-par-2-h100").read_text(encoding="utf-8")
    unneeded = re.search(r"scale_down_unneeded_time:\s*(\d+)m", text)
    unneeded_s = int(unneeded.group(1)) * 60 if unneeded else 600  # the config's and cluster-autoscaler's default: 10m
    assert max(delays) < unneeded_s, "the node an evicted job asked for would be scaled down before it is back"
    assert minutes(conf["recoveryTimeout"]) < minutes(conf["timeout"]), "a recovering job blocks every admission meanwhile"


def test_fields_exist_in_the_pinned_kueue(default_plan):
    """Every waitForPodsReady key we set is one the pinned chart documents (its commented example)."""
    text = (require_upstream() / "kueue" / "charts" / "kueue" / "values.yaml").read_text(encoding="utf-8")
    block = re.search(r"^(\s*)#waitForPodsReady:\n((?:\1#\s.*\n)+)", text, re.MULTILINE)
    assert block, "the pinned values.yaml no longer documents waitForPodsReady"
    documented = yaml.safe_load("waitForPodsReady:\n" + "\n".join(line.replace("#", "", 1) for line in block.group(2).splitlines()))["waitForPodsReady"]
    conf = wait_for_pods_ready(default_plan)
    assert set(conf) <= set(documented)
    assert set(conf["requeuingStrategy"]) <= set(documented["requeuingStrategy"])


@pytest.mark.parametrize(
    "edit,key",
    [
        (lambda r: r.update(node_ready_minutes="an hour"), "provisioning.gpu_node_start.ovh.node_ready_minutes"),
        (lambda r: r.update(gpu_ready_minutes=-1), "provisioning.gpu_node_start.ovh.gpu_ready_minutes"),
        (lambda r: r.update(sources=["nowhere"]), "provisioning.gpu_node_start.ovh.sources"),
        (lambda r: r.update(sources=[]), "provisioning.gpu_node_start.ovh.sources"),
    ],
)
def test_catalog_refuses_a_figure_without_minutes_or_source(edit, key):
    from importlib import resources

    data = yaml.safe_load(resources.files("infratech").joinpath("catalog.yaml").read_text(encoding="utf-8"))
    edit(data["provisioning"]["gpu_node_start"]["ovh"])
    with pytest.raises(ValueError, match=re.escape(key)):
        catalog.Catalog(data)
