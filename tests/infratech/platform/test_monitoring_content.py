"""The monitoring data files: Grafana dashboards and the PrometheusRule spec.

The platform ships ``infratech/program/platform/monitoring/dashboards/*.json`` as ConfigMaps for Grafana's
sidecar and ``rules.yaml`` as the ``spec`` of a PrometheusRule (docs/monitoring.md). No Grafana or
Prometheus runs here, so these tests check what can be checked offline:

* the dashboards are valid JSON, with unique panel ids, every panel and query on the
  ``${datasource}`` variable, every variable they use defined, panels inside the 24-column grid and
  not overlapping;
* every PromQL expression (dashboard queries, variable queries, alert rules) parses with the
  ``promql-parser`` package (the Rust parser of GreptimeTeam/promql-parser, a dev dependency), and
  the checks below read metric names, label names and rated selectors from its syntax tree;
* every metric name used is in :data:`METRICS`, each entry naming where the name comes from, and
  none is one the exporters do not emit by default (:data:`NOT_EMITTED`): a typo'd metric name,
  which Prometheus would silently answer with "no data", fails here; so does a label name that no
  source of the expression's metrics carries (``hostname`` for dcgm-exporter's ``Hostname``), and
  ``rate()`` on a gauge;
* the rules validate against the PrometheusRule CRD's ``openAPIV3Schema`` of the pinned
  kube-prometheus-stack (upstream data, ``INFRATECH_UPSTREAM``; skipped with the reason where it
  is absent), unknown fields rejected as the API server would prune them; every alert has a
  severity, a summary, a description and a runbook section that exists in docs/monitoring.md;
* where ``promtool`` is on the PATH (Debian: ``apt-get install prometheus``), the rule file passes
  ``promtool check rules`` (annotation templates included) and the alerts fire, or stay quiet, as
  docs/monitoring.md says on synthetic series (:data:`SCENARIOS`, ``promtool test rules``),
  also with the pending limit rewritten as the platform does.

Not checked: that the queries return data on a real cluster (docs/monitoring.md says how).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Optional

import promql_parser  # the PromQL checks walk its syntax tree (a dev dependency)
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
PACKAGE = "infratech.program.platform.monitoring"
DOCS = REPO / "docs" / "monitoring.md"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}



# --- where every metric name comes from -------------------------------------------------------------

DCGM = (
    "NVIDIA/dcgm-exporter etc/dcp-metrics-included.csv, the counters file the GPU operator gives the "
    "exporter (DCGM_EXPORTER_COLLECTORS in gpu-operator assets/state-dcgm-exporter/*_daemonset.yaml); "
    "same enabled rows as etc/default-counters.csv of exporter 4.8.x (image 4.6.0-4.8.3 in GPU operator v26.7.0)"
)
KUEUE = "kubernetes-sigs/kueue pkg/metrics/metrics.go, site/content/en/docs/reference/metrics.md"
KUEUE_OPT = KUEUE + " (only with metrics.enableClusterQueueResources: true in Kueue's Configuration)"
VLLM = "vllm-project/vllm docs/design/metrics.md (v1 engine metrics, vllm: prefix), vllm/v1/metrics/loggers.py"
KSM = "kubernetes/kube-state-metrics docs/metrics (node and daemonset metrics); kube-prometheus-stack ships it"
PROM = "Prometheus itself: up (per scrape target), ALERTS (per active alert)"

# name -> (type, source). Histograms are listed by their base name; _bucket, _sum and _count are
# accepted for them. The type drives the rate() check: rate/irate/increase only on counters.
METRICS: dict[str, tuple[str, str]] = {
    # dcgm-exporter, enabled by default
    "DCGM_FI_DEV_SM_CLOCK": ("gauge", DCGM),
    "DCGM_FI_DEV_MEM_CLOCK": ("gauge", DCGM),
    "DCGM_FI_DEV_MEMORY_TEMP": ("gauge", DCGM),
    "DCGM_FI_DEV_GPU_TEMP": ("gauge", DCGM),
    "DCGM_FI_DEV_POWER_USAGE": ("gauge", DCGM),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": ("counter", DCGM),
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": ("counter", DCGM),
    "DCGM_FI_DEV_GPU_UTIL": ("gauge", DCGM),
    "DCGM_FI_DEV_MEM_COPY_UTIL": ("gauge", DCGM),
    "DCGM_FI_DEV_ENC_UTIL": ("gauge", DCGM),
    "DCGM_FI_DEV_DEC_UTIL": ("gauge", DCGM),
    "DCGM_FI_DEV_XID_ERRORS": ("gauge", DCGM + "; the value of the LAST XID, sticky (NVIDIA/DCGM#277)"),
    "DCGM_FI_DEV_FB_FREE": ("gauge", DCGM),
    "DCGM_FI_DEV_FB_USED": ("gauge", DCGM),
    "DCGM_FI_DEV_FB_RESERVED": ("gauge", DCGM),
    # typed "counter" in older CSVs, but DCGM field 449 is an instantaneous rate: never rate() it
    # (dcgm-exporter#195, #472; KempnerInstitute/kempnerpulse#10); exporter 4.8.x types it gauge
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL": ("gauge", DCGM),
    "DCGM_FI_DEV_VGPU_LICENSE_STATUS": ("gauge", DCGM),
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": ("counter", DCGM),
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS": ("counter", DCGM),
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": ("gauge", DCGM),
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": ("gauge", DCGM),
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": ("gauge", DCGM),
    "DCGM_FI_PROF_DRAM_ACTIVE": ("gauge", DCGM),
    "DCGM_FI_PROF_PCIE_TX_BYTES": ("gauge", DCGM + "; bytes per second"),
    "DCGM_FI_PROF_PCIE_RX_BYTES": ("gauge", DCGM + "; bytes per second"),
    # Kueue
    "kueue_pending_workloads": ("gauge", KUEUE),
    "kueue_admitted_active_workloads": ("gauge", KUEUE),
    "kueue_reserving_active_workloads": ("gauge", KUEUE),
    "kueue_cluster_queue_status": ("gauge", KUEUE),
    "kueue_admitted_workloads_total": ("counter", KUEUE),
    "kueue_quota_reserved_workloads_total": ("counter", KUEUE),
    "kueue_evicted_workloads_total": ("counter", KUEUE),
    "kueue_preempted_workloads_total": ("counter", KUEUE),
    "kueue_admission_attempts_total": ("counter", KUEUE),
    "kueue_admission_wait_time_seconds": ("histogram", KUEUE),
    "kueue_quota_reserved_wait_time_seconds": ("histogram", KUEUE),
    "kueue_cluster_queue_resource_usage": ("gauge", KUEUE_OPT),
    "kueue_cluster_queue_resource_reservation": ("gauge", KUEUE_OPT),
    "kueue_cluster_queue_nominal_quota": ("gauge", KUEUE_OPT),
    "kueue_cluster_queue_borrowing_limit": ("gauge", KUEUE_OPT),
    # vLLM (v1 engine)
    "vllm:num_requests_running": ("gauge", VLLM),
    "vllm:num_requests_waiting": ("gauge", VLLM),
    "vllm:kv_cache_usage_perc": ("gauge", VLLM),
    "vllm:num_preemptions_total": ("counter", VLLM),
    "vllm:prompt_tokens_total": ("counter", VLLM),
    "vllm:generation_tokens_total": ("counter", VLLM),
    "vllm:request_success_total": ("counter", VLLM),
    "vllm:time_to_first_token_seconds": ("histogram", VLLM),
    "vllm:inter_token_latency_seconds": ("histogram", VLLM),
    "vllm:e2e_request_latency_seconds": ("histogram", VLLM),
    "vllm:request_queue_time_seconds": ("histogram", VLLM),
    # kube-state-metrics
    "kube_node_status_capacity": ("gauge", KSM),
    "kube_node_status_allocatable": ("gauge", KSM),
    "kube_daemonset_status_number_available": ("gauge", KSM),
    "kube_daemonset_status_number_unavailable": ("gauge", KSM),
    # Prometheus
    "up": ("gauge", PROM),
    "ALERTS": ("gauge", PROM),
}

# Real names that must not be used: the exporters do not emit them as deployed here.
NOT_EMITTED: dict[str, str] = {
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": "commented out in dcgm-exporter's default counters; needs a custom dcgmExporter.config",
    "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": "commented out in dcgm-exporter's default counters",
    "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL": "commented out in dcgm-exporter's default counters",
    "DCGM_FI_DEV_RETIRED_DBE": "commented out in dcgm-exporter's default counters",
    "DCGM_FI_DEV_ROW_REMAP_PENDING": "not in dcgm-exporter's default counters",
    "DCGM_FI_PROF_SM_ACTIVE": "commented out in dcgm-exporter's default counters",
    "DCGM_FI_PROF_SM_OCCUPANCY": "commented out in dcgm-exporter's default counters",
    "DCGM_EXP_XID_ERRORS_COUNT": "commented out in dcgm-exporter's default counters",
    "DCGM_FI_DEV_FB_TOTAL": "not in dcgm-exporter's default counters",
    "vllm:gpu_cache_usage_perc": "deprecated, no longer emitted by default (vllm-project/vllm PR #30041): vllm:kv_cache_usage_perc",
    "vllm:time_per_output_token_seconds": "v0 name; the v1 engine has vllm:inter_token_latency_seconds",
}

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Label names each source's series carry (target labels added by Prometheus are in TARGET).
TARGET = {"job", "instance", "namespace", "pod", "container", "service", "endpoint", "le", "__name__"}
LABELS_BY_SOURCE: dict[str, set[str]] = {
    DCGM.split(";")[0]: {
        "gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "GPU_I_PROFILE", "GPU_I_ID",
        "DCGM_FI_DRIVER_VERSION", "err_code", "err_msg",
        # the exporter's own pod attribution, renamed by Prometheus because honorLabels is false
        "exported_namespace", "exported_pod", "exported_container",
    },
    KUEUE: {"cluster_queue", "status", "reason", "detailed_reason", "preempting_cluster_queue", "replica_role", "priority_class", "result"},
    KUEUE_OPT: {"cohort", "cluster_queue", "flavor", "resource", "replica_role"},
    VLLM: {"model_name", "engine", "finished_reason"},
    KSM: {"node", "resource", "unit", "daemonset"},
    PROM: {"alertname", "alertstate", "severity"},
}


def metric_source(name: str) -> Optional[str]:
    entry = METRICS.get(name) or METRICS.get(histogram_base(name) or "")
    return entry[1] if entry else None


def histogram_base(name: str) -> Optional[str]:
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and METRICS.get(base, ("",))[0] == "histogram":
            return base
    return None


def metric_kind(name: str) -> Optional[str]:
    if name in METRICS:
        return METRICS[name][0]
    base = histogram_base(name)
    if base is None:
        return None
    return "counter"  # _bucket, _sum and _count of a histogram are counters


def labels_for(metrics: set[str]) -> set[str]:
    allowed = set(TARGET)
    for name in metrics:
        source = metric_source(name) or ""
        for key, labels in LABELS_BY_SOURCE.items():
            if source.startswith(key):
                allowed |= labels
    return allowed


def metric_problems(name: str) -> list[str]:
    if name in NOT_EMITTED:
        return [f"{name}: {NOT_EMITTED[name]}"]
    if metric_kind(name) is None:
        return [f"{name}: not a known metric name (typo? add it to METRICS with its source if it is real)"]
    return []


# --- Grafana variables ------------------------------------------------------------------------------

# Grafana's own interval variables, replaced by a duration before parsing
GRAFANA_DURATIONS = ("__rate_interval", "__interval", "__range")
_VAR = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)")


def grafana_variables(expr: str) -> set[str]:
    return {a or b for a, b in _VAR.findall(expr)}


def substitute_grafana(expr: str) -> str:
    """The PromQL Prometheus receives once Grafana has filled in the variables: durations for its
    interval variables, a regular expression for the dashboard's (used in ``=~`` matchers)."""

    def repl(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return "5m" if name in GRAFANA_DURATIONS else ".*"

    return _VAR.sub(repl, expr)


# --- structural PromQL check (no dependency) ---------------------------------------------------------

RATE_FUNCTIONS = {"rate", "irate", "increase"}
_REGEX_OPS = ("=~", "!~")


class Structure:
    """What promql-parser's syntax tree says of one expression."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.metrics: set[str] = set()
        self.labels: set[str] = set()
        self.rated: list[tuple[str, str]] = []  # (metric, function) for selectors directly under rate/irate/increase


def _walk(node: Any, out: Structure, call: Optional[str]) -> None:
    """Every node of the tree; ``call`` is the function whose direct argument ``node`` is."""
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            out.metrics.add(node.name)
            if call in RATE_FUNCTIONS:
                out.rated.append((node.name, call))
        for matcher in node.matchers.matchers:
            if matcher.name == "__name__":
                out.metrics.add(matcher.value)
            else:
                out.labels.add(matcher.name)
    elif isinstance(node, promql_parser.MatrixSelector):
        _walk(node.vector_selector, out, call)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            _walk(arg, out, node.func.name)
    elif isinstance(node, promql_parser.AggregateExpr):
        if node.modifier is not None:
            out.labels.update(node.modifier.labels)
        _walk(node.expr, out, None)
        if node.param is not None:
            _walk(node.param, out, None)
    elif isinstance(node, promql_parser.BinaryExpr):
        modifier = node.modifier
        if modifier is not None:
            if modifier.matching is not None:
                out.labels.update(modifier.matching.labels)
            out.labels.update(modifier.group_labels or ())
        _walk(node.lhs, out, None)
        _walk(node.rhs, out, None)
    elif isinstance(node, (promql_parser.ParenExpr, promql_parser.SubqueryExpr, promql_parser.UnaryExpr)):
        _walk(node.expr, out, None)


def structure(expr: str) -> Structure:
    """The metric names, label names and rated selectors of a PromQL expression, read from
    promql-parser's syntax tree; a parse error (brackets, strings, regular expressions, ranges,
    unknown functions: the parser's own words) is the one error."""
    out = Structure()
    try:
        tree = promql_parser.parse(expr)
    except ValueError as exc:
        out.errors.append(str(exc))
        return out
    _walk(tree, out, None)
    return out


# --- the data ----------------------------------------------------------------------------------------


def data_text(*parts: str) -> str:
    node = resources.files(PACKAGE)
    for part in parts:
        node = node.joinpath(part)
    return node.read_text(encoding="utf-8")


def dashboard_names() -> list[str]:
    folder = resources.files(PACKAGE).joinpath("dashboards")
    return sorted(f.name for f in folder.iterdir() if f.name.endswith(".json"))


def load_dashboard(name: str) -> dict:
    return json.loads(data_text("dashboards", name))


def load_rules() -> dict:
    return yaml.safe_load(data_text("rules.yaml"))


def all_panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep their panels inside


def alerts(spec: dict) -> Iterator[tuple[str, dict]]:
    for group in spec["groups"]:
        for rule in group["rules"]:
            yield group["name"], rule


def expressions() -> list[tuple[str, str, str]]:
    """(where, PromQL as Prometheus receives it, as written) for every query we ship."""
    out = []
    for name in dashboard_names():
        board = load_dashboard(name)
        for var in board.get("templating", {}).get("list", []):
            if var.get("type") == "query":
                query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query, re.S)
                assert m, f"{name} variable {var['name']}: only label_values(selector, label) queries are used"
                out.append((f"{name} variable {var['name']}", substitute_grafana(m.group(1)), m.group(1)))
        for panel in all_panels(board):
            for t in panel.get("targets", []):
                out.append((f"{name} panel {panel['id']} {panel['title']!r} {t['refId']}", substitute_grafana(t["expr"]), t["expr"]))
    for group, rule in alerts(load_rules()):
        out.append((f"rules.yaml {group} {rule.get('alert') or rule.get('record')}", rule["expr"], rule["expr"]))
    return out


EXPRESSIONS = expressions()
IDS = [where for where, _, _ in EXPRESSIONS]


# --- dashboards ----------------------------------------------------------------------------------------


def test_the_two_dashboards_ship():
    assert dashboard_names() == ["gpus.json", "queues.json"]
    assert load_dashboard("gpus.json")["uid"] == "infratech-gpus"
    assert load_dashboard("gpus.json")["title"] == "InfraTech / GPUs"
    assert load_dashboard("queues.json")["uid"] == "infratech-queues"
    assert load_dashboard("queues.json")["title"] == "InfraTech / Queues and jobs"


@pytest.mark.parametrize("name", dashboard_names())
def test_dashboard_is_valid_json_with_unique_panel_ids(name):
    board = load_dashboard(name)
    assert isinstance(board.get("schemaVersion"), int) and 36 <= board["schemaVersion"] <= 41
    assert "id" not in board or board["id"] is None, "a provisioned dashboard must not carry a database id"
    ids = [p["id"] for p in all_panels(board)]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"


@pytest.mark.parametrize("name", dashboard_names())
def test_every_panel_and_query_uses_the_datasource_variable(name):
    board = load_dashboard(name)
    problems = []
    for panel in all_panels(board):
        if panel["type"] == "row":
            assert not panel.get("targets"), f"row {panel['title']!r} has queries"
            continue
        if panel.get("datasource") != DATASOURCE:
            problems.append(f"panel {panel['id']} {panel['title']!r}: datasource {panel.get('datasource')!r}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"panel {panel['id']} {panel['title']!r}: no query")
        refs = [t.get("refId") for t in targets]
        if len(refs) != len(set(refs)):
            problems.append(f"panel {panel['id']}: duplicate refIds {refs}")
        for t in targets:
            if t.get("datasource") != DATASOURCE:
                problems.append(f"panel {panel['id']} {t.get('refId')}: datasource {t.get('datasource')!r}")
            if not str(t.get("expr", "")).strip():
                problems.append(f"panel {panel['id']} {t.get('refId')}: empty expr")
    variables = board["templating"]["list"]
    ds = [v for v in variables if v["name"] == "datasource"]
    assert ds and ds[0]["type"] == "datasource" and ds[0]["query"] == "prometheus", "a `datasource` variable of type prometheus"
    for var in variables:
        if var["type"] == "query" and var.get("datasource") != DATASOURCE:
            problems.append(f"variable {var['name']}: datasource {var.get('datasource')!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", dashboard_names())
def test_variables_used_are_defined_before_use(name):
    board = load_dashboard(name)
    defined: list[str] = []
    problems = []
    for var in board["templating"]["list"]:
        query = var.get("definition") or (var["query"]["query"] if isinstance(var.get("query"), dict) else "")
        for used in grafana_variables(query or ""):
            if used not in defined:
                problems.append(f"variable {var['name']} uses ${used}, not defined before it")
        defined.append(var["name"])
    for panel in all_panels(board):
        for t in panel.get("targets", []):
            for used in grafana_variables(t["expr"]) - set(GRAFANA_DURATIONS):
                if used not in defined:
                    problems.append(f"panel {panel['id']} {t['refId']}: ${used} is not a variable of the dashboard")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", dashboard_names())
def test_panels_fit_the_grid_without_overlapping(name):
    board = load_dashboard(name)
    cells: dict[tuple[int, int], int] = {}
    problems = []
    for panel in board["panels"]:  # top level: what is shown with every row expanded
        g = panel["gridPos"]
        if not (0 <= g["x"] and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0 and g["y"] >= 0):
            problems.append(f"panel {panel['id']} outside the 24-column grid: {g}")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    problems.append(f"panel {panel['id']} overlaps panel {cells[(x, y)]} at {(x, y)}")
                    break
                cells[(x, y)] = panel["id"]
    assert not problems, "\n".join(sorted(set(problems)))


def test_gpu_dashboard_filters_by_node_and_gpu_model():
    board = load_dashboard("gpus.json")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["node"]["query"]["query"].endswith(", Hostname)"), "dcgm-exporter's node label is Hostname"
    assert variables["model"]["query"]["query"].endswith(", modelName)")
    for panel in all_panels(board):
        for t in panel.get("targets", []):
            if "DCGM_FI_" in t["expr"]:
                assert 'Hostname=~"$node"' in t["expr"] and 'modelName=~"$model"' in t["expr"], f"panel {panel['title']!r} {t['refId']}"


def _dashboard_text(name: str) -> str:
    return " ".join(t["expr"] for p in all_panels(load_dashboard(name)) for t in p.get("targets", []))


def test_gpu_dashboard_covers_what_operators_need():
    text = _dashboard_text("gpus.json")
    for needed in (
        "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        "exported_namespace", "exported_pod",  # pod attribution, as it arrives with honorLabels: false
    ):
        assert needed in text, needed


def test_queue_dashboard_covers_kueue_and_vllm():
    text = _dashboard_text("queues.json")
    for needed in (
        "kueue_pending_workloads", "kueue_admitted_active_workloads", "kueue_cluster_queue_nominal_quota",
        "kueue_cluster_queue_resource_usage", 'resource="nvidia.com/gpu"', "kueue_admission_wait_time_seconds_bucket",
        "kueue_evicted_workloads_total", "kueue_preempted_workloads_total",
        "vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc",
        "vllm:time_to_first_token_seconds_bucket",
    ):
        assert needed in text, needed


# --- PromQL --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where,expr,written", EXPRESSIONS, ids=IDS)
def test_expression_is_well_formed(where, expr, written):
    found = structure(expr)
    assert not found.errors, f"{where}: {found.errors}\n{expr}"
    assert found.metrics, f"{where}: no metric in {expr!r}"


@pytest.mark.parametrize("where,expr,written", EXPRESSIONS, ids=IDS)
def test_metric_and_label_names_are_known(where, expr, written):
    found = structure(expr)
    problems = [p for name in sorted(found.metrics) for p in metric_problems(name)]
    unknown_labels = found.labels - labels_for(found.metrics)
    if unknown_labels:
        problems.append(f"labels no source of {sorted(found.metrics)} carries: {sorted(unknown_labels)}")
    for name, func in found.rated:
        if metric_kind(name) not in ("counter", None):
            problems.append(f"{func}() on {name}, a {metric_kind(name)}: use it as it is")
    for name in found.metrics:
        if name.endswith("_bucket") and (name, "rate") not in found.rated and (name, "increase") not in found.rated:
            problems.append(f"{name}: histogram buckets go through rate() or increase() before histogram_quantile()")
    assert not problems, f"{where}:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "broken,expected",
    [
        ("avg(DCGM_FI_DEV_GPU_UTILL)", "not a known metric"),
        ('max by (hostname) (DCGM_FI_DEV_GPU_TEMP)', "labels no source"),
        ("sum(vllm:gpu_cache_usage_perc)", "deprecated"),
        ("rate(DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL[5m])", "rate() on"),
        ("sum(kueue_pending_workloads{cluster_queue=\"a\"}", "unclosed"),
        ('kueue_pending_workloads{cluster_queue="a}', "unterminated quoted string"),
        ("kueue_pending_workloads{cluster_queue=~\"(a\"}", "illegal regex"),
        ("increase(kueue_admitted_workloads_total[1x])", "bad number or duration"),
        ("sum(x) by (node) [5m]", "ranges only allowed for vector selectors"),
        ("sumx(kueue_pending_workloads)", "unknown function"),
    ],
)
def test_the_checks_catch_typos(broken, expected):
    found = structure(broken)
    problems = found.errors + [p for n in sorted(found.metrics) for p in metric_problems(n)]
    if found.labels - labels_for(found.metrics):
        problems.append("labels no source carries")
    problems += [f"rate() on {n}" for n, _ in found.rated if metric_kind(n) == "gauge"]
    assert any(expected in p for p in problems), problems


def test_every_known_metric_names_its_source():
    for name, (kind, source) in METRICS.items():
        assert kind in ("gauge", "counter", "histogram") and source, name
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name), name
    assert not set(METRICS) & set(NOT_EMITTED)


# --- rules ---------------------------------------------------------------------------------------------

EXPECTED_ALERTS = {
    "infratech.gpu": {
        "GpuXidErrors", "GpuFellOffTheBus", "GpuEccDoubleBitErrors", "GpuRowRemapFailure", "GpuTemperatureHigh",
        "GpuMarkedUnhealthy", "DcgmExporterDown",
    },
    "infratech.queues": {"KueueWorkloadsPendingTooLong", "KueueClusterQueueInactive", "VllmRequestsQueueing"},
}
_PROM_DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")


def test_rule_groups_and_alerts():
    spec = load_rules()
    assert set(spec) == {"groups"}, "rules.yaml is the spec of a PrometheusRule: only `groups`"
    found = {g["name"]: {r.get("alert") for r in g["rules"]} for g in spec["groups"]}
    assert found == EXPECTED_ALERTS
    names = [r.get("alert") for _, r in alerts(spec)]
    assert len(names) == len(set(names))


def _anchors(markdown: str) -> set[str]:
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


@pytest.mark.parametrize("group,rule", list(alerts(load_rules())), ids=lambda v: v if isinstance(v, str) else v.get("alert"))
def test_alert_is_complete(group, rule):
    assert rule.get("alert") and isinstance(rule.get("expr"), str)
    assert _PROM_DURATION.match(str(rule.get("for", ""))), f"for: {rule.get('for')!r}"
    assert rule["labels"]["severity"] in ("warning", "critical")
    ann = rule["annotations"]
    for key in ("summary", "description", "runbook"):
        assert isinstance(ann.get(key), str) and ann[key].strip(), f"annotations.{key}"
    doc, _, anchor = ann["runbook"].partition("#")
    assert doc == "docs/monitoring.md" and anchor in _anchors(DOCS.read_text(encoding="utf-8")), (
        f"runbook {ann['runbook']!r}: no such section in docs/monitoring.md"
    )
    expr_labels = structure(rule["expr"]).labels
    for key, text in ann.items():
        assert text.count("{{") == text.count("}}"), f"annotations.{key}: unbalanced template"
        for var in re.findall(r"\{\{\s*(\$[\w.]+)", text):
            assert var == "$value" or var.startswith("$labels."), f"annotations.{key}: {var}"
            if var.startswith("$labels."):
                label = var.split(".", 1)[1]
                assert label in expr_labels, f"annotations.{key}: {var}, but the expression keeps no label {label!r}"


def test_pending_limit_is_the_for_of_the_pending_alert():
    """The platform writes the stack's pending limit into `for` (monitoring.rules); the file
    carries the default, 1h, and the expression stays valid whatever the limit."""
    pending = {r["alert"]: r for _, r in alerts(load_rules())}["KueueWorkloadsPendingTooLong"]
    assert pending["for"] == "1h"
    assert "1h" not in pending["expr"], "the limit lives in `for` only"


# --- the PrometheusRule CRD ----------------------------------------------------------------------------

ENV = "INFRATECH_UPSTREAM"
CRD_FILE = "kube-prometheus-stack/charts/kube-prometheus-stack/charts/crds/crds/crd-prometheusrules.yaml"


def _upstream() -> Path:
    env = os.environ.get(ENV)
    return Path(env) if env else REPO.parent / "shared" / "reference" / "upstream"


def _rule_spec_schema() -> dict:
    path = _upstream() / CRD_FILE
    if not path.is_file():
        pytest.skip(f"PrometheusRule CRD not found at {path}: upstream reference data absent (set {ENV})")
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            version = next(v for v in doc["spec"]["versions"] if v["name"] == "v1")
            return version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    pytest.fail(f"no CustomResourceDefinition in {path}")


def _unknown_fields(value: Any, schema: dict, path: str = "spec") -> list[str]:
    """Fields the API server would prune (structural schema: an object keeps only the properties
    it declares, unless it has additionalProperties or preserves unknown fields)."""
    problems = []
    if isinstance(value, dict) and schema.get("type") == "object" and not schema.get("x-kubernetes-preserve-unknown-fields"):
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                problems += _unknown_fields(item, props[key], f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += _unknown_fields(item, schema["additionalProperties"], f"{path}.{key}")
            else:
                problems.append(f"{path}.{key}: not in the CRD, would be dropped")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += _unknown_fields(item, schema["items"], f"{path}[{i}]")
    return problems


def test_rules_validate_against_the_prometheusrule_crd():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (a dev dependency)")
    schema = _rule_spec_schema()
    spec = load_rules()
    validator = jsonschema.Draft4Validator(schema)
    errors = [f"{'.'.join(map(str, e.absolute_path)) or 'spec'}: {e.message}" for e in validator.iter_errors(spec)]
    assert not errors, "\n".join(errors)
    assert not _unknown_fields(spec, schema)


def test_the_crd_check_catches_a_misplaced_field():
    schema = _rule_spec_schema()
    spec = load_rules()
    spec["groups"][0]["rules"][0]["severity"] = "critical"  # belongs under labels
    assert _unknown_fields(spec, schema) == ["spec.groups[0].rules[0].severity: not in the CRD, would be dropped"]


# --- what the alerts do, on synthetic series (promtool) -----------------------------------------------

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not on PATH (Debian package `prometheus`); the alert scenarios need it"
)

# promtool unit tests (https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/)
# run on rules.yaml without its annotations: they test what fires, with which labels, when.
SCENARIOS = """\
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  # XID: a new code fires for an hour (exporter 4.x labels err_code/err_msg)
  - interval: 1m
    input_series:
      - series: 'DCGM_FI_DEV_XID_ERRORS{Hostname="n1",gpu="0",UUID="GPU-a",modelName="H100",err_code="0",err_msg="No Error"}'
        values: '0x30 stale'
      - series: 'DCGM_FI_DEV_XID_ERRORS{Hostname="n1",gpu="0",UUID="GPU-a",modelName="H100",err_code="43",err_msg="GPU stopped processing"}'
        values: '_x31 43x200'
    alert_rule_test:
      - {eval_time: 20m, alertname: GpuXidErrors, exp_alerts: []}
      - eval_time: 40m
        alertname: GpuXidErrors
        exp_alerts:
          - exp_labels: {severity: warning, Hostname: n1, gpu: "0", UUID: GPU-a, modelName: H100, err_code: "43", err_msg: GPU stopped processing}
      - {eval_time: 100m, alertname: GpuXidErrors, exp_alerts: []}
      - {eval_time: 40m, alertname: GpuFellOffTheBus, exp_alerts: []}
  # XID without err_code labels: a sticky code stays quiet, a change of code fires; XID 79 is critical
  - interval: 1m
    input_series:
      - series: 'DCGM_FI_DEV_XID_ERRORS{Hostname="n2",gpu="0",UUID="GPU-b",modelName="L4"}'
        values: '13x200'
      - series: 'DCGM_FI_DEV_XID_ERRORS{Hostname="n2",gpu="1",UUID="GPU-c",modelName="L4"}'
        values: '13x90 79x110'
    alert_rule_test:
      - {eval_time: 80m, alertname: GpuXidErrors, exp_alerts: []}
      - eval_time: 100m
        alertname: GpuXidErrors
        exp_alerts:
          - exp_labels: {severity: warning, Hostname: n2, gpu: "1", UUID: GPU-c, modelName: L4}
      - eval_time: 100m
        alertname: GpuFellOffTheBus
        exp_alerts:
          - exp_labels: {severity: critical, Hostname: n2, gpu: "1", UUID: GPU-c, modelName: L4}
      - {eval_time: 100m, alertname: GpuEccDoubleBitErrors, exp_alerts: []}
  # a GPU vanishes from a node that still reports others; a whole node goes away; an exporter reports no GPU
  - interval: 1m
    input_series:
      - series: 'DCGM_FI_DEV_GPU_TEMP{Hostname="n1",gpu="0",UUID="GPU-a",modelName="H100",job="nvidia-dcgm-exporter",instance="10.0.0.1:9400",pod="e1",namespace="gpu-operator"}'
        values: '50x500'
      - series: 'DCGM_FI_DEV_GPU_TEMP{Hostname="n1",gpu="1",UUID="GPU-b",modelName="H100",job="nvidia-dcgm-exporter",instance="10.0.0.1:9400",pod="e1",namespace="gpu-operator"}'
        values: '50x30 stale'
      - series: 'DCGM_FI_DEV_GPU_TEMP{Hostname="n2",gpu="0",UUID="GPU-c",modelName="H100",job="nvidia-dcgm-exporter",instance="10.0.0.2:9400",pod="e2",namespace="gpu-operator"}'
        values: '50x30 stale'
      - series: 'up{job="nvidia-dcgm-exporter",instance="10.0.0.1:9400",pod="e1",namespace="gpu-operator"}'
        values: '1x500'
      - series: 'up{job="nvidia-dcgm-exporter",instance="10.0.0.3:9400",pod="e3",namespace="gpu-operator"}'
        values: '1x500'
    alert_rule_test:
      - eval_time: 50m
        alertname: GpuFellOffTheBus
        exp_alerts:
          - exp_labels: {severity: critical, Hostname: n1, gpu: "1", UUID: GPU-b, modelName: H100}
          - exp_labels: {severity: critical, namespace: gpu-operator, pod: e3, instance: "10.0.0.3:9400"}
      - eval_time: 400m
        alertname: GpuFellOffTheBus
        exp_alerts:
          - exp_labels: {severity: critical, namespace: gpu-operator, pod: e3, instance: "10.0.0.3:9400"}
      - {eval_time: 50m, alertname: DcgmExporterDown, exp_alerts: []}
      - {eval_time: 50m, alertname: GpuTemperatureHigh, exp_alerts: []}
  # uncorrectable memory errors, row-remap failure, heat
  - interval: 1m
    input_series:
      - series: 'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS{Hostname="n1",gpu="0",UUID="GPU-a",modelName="H100",pod="e1"}'
        values: '2x20 3x100'
      - series: 'DCGM_FI_DEV_XID_ERRORS{Hostname="n1",gpu="1",UUID="GPU-b",modelName="H100",err_code="48",err_msg="DBE"}'
        values: '48x120'
      - series: 'DCGM_FI_DEV_ROW_REMAP_FAILURE{Hostname="n1",gpu="2",UUID="GPU-c",modelName="H100"}'
        values: '0x10 1x100'
      - series: 'DCGM_FI_DEV_GPU_TEMP{Hostname="n1",gpu="3",UUID="GPU-d",modelName="H100"}'
        values: '70x10 90x100'
      - series: 'DCGM_FI_DEV_MEMORY_TEMP{Hostname="n1",gpu="3",UUID="GPU-d",modelName="H100"}'
        values: '80x110'
    alert_rule_test:
      - eval_time: 30m
        alertname: GpuEccDoubleBitErrors
        exp_alerts:
          - exp_labels: {severity: critical, Hostname: n1, gpu: "0", UUID: GPU-a, modelName: H100}
          - exp_labels: {severity: critical, Hostname: n1, gpu: "1", UUID: GPU-b, modelName: H100}
      - eval_time: 80m
        alertname: GpuEccDoubleBitErrors
        exp_alerts:
          - exp_labels: {severity: critical, Hostname: n1, gpu: "1", UUID: GPU-b, modelName: H100}
      - eval_time: 30m
        alertname: GpuRowRemapFailure
        exp_alerts:
          - exp_labels: {severity: critical, Hostname: n1, gpu: "2", UUID: GPU-c, modelName: H100}
      - {eval_time: 15m, alertname: GpuTemperatureHigh, exp_alerts: []}
      - eval_time: 30m
        alertname: GpuTemperatureHigh
        exp_alerts:
          - exp_labels: {severity: warning, Hostname: n1, gpu: "3", UUID: GPU-d, modelName: H100}
  # device plugin and exporter availability
  - interval: 1m
    input_series:
      - series: 'kube_node_status_capacity{node="n1",resource="nvidia_com_gpu",unit="integer"}'
        values: '8x60'
      - series: 'kube_node_status_allocatable{node="n1",resource="nvidia_com_gpu",unit="integer"}'
        values: '8x10 7x50'
      - series: 'kube_node_status_capacity{node="n2",resource="nvidia_com_gpu",unit="integer"}'
        values: '1x60'
      - series: 'kube_node_status_allocatable{node="n2",resource="nvidia_com_gpu",unit="integer"}'
        values: '1x60'
      - series: 'kube_daemonset_status_number_available{namespace="gpu-operator",daemonset="nvidia-dcgm-exporter"}'
        values: '2x60'
      - series: 'kube_daemonset_status_number_unavailable{namespace="gpu-operator",daemonset="nvidia-dcgm-exporter"}'
        values: '0x60'
    alert_rule_test:
      - {eval_time: 20m, alertname: GpuMarkedUnhealthy, exp_alerts: []}
      - eval_time: 30m
        alertname: GpuMarkedUnhealthy
        exp_alerts:
          - exp_labels: {severity: warning, node: n1}
      - eval_time: 30m
        alertname: DcgmExporterDown
        exp_alerts:
          - exp_labels: {severity: warning, namespace: gpu-operator, daemonset: nvidia-dcgm-exporter}
  - interval: 1m
    input_series:
      - series: 'up{job="nvidia-dcgm-exporter",instance="10.0.0.1:9400",pod="e1",namespace="gpu-operator"}'
        values: '0x30'
      - series: 'up{job="nvidia-dcgm-exporter",instance="10.0.0.2:9400",pod="e2",namespace="gpu-operator"}'
        values: '1x30'
      - series: 'kube_daemonset_status_number_available{namespace="gpu-operator",daemonset="nvidia-dcgm-exporter"}'
        values: '1x30'
      - series: 'kube_daemonset_status_number_unavailable{namespace="gpu-operator",daemonset="nvidia-dcgm-exporter"}'
        values: '0x5 1x25'
    alert_rule_test:
      - eval_time: 20m
        alertname: DcgmExporterDown
        exp_alerts:
          - exp_labels: {severity: warning, namespace: gpu-operator, pod: e1, instance: "10.0.0.1:9400"}
          - exp_labels: {severity: warning, namespace: gpu-operator, daemonset: nvidia-dcgm-exporter}
  # Kueue: stuck with free quota, full, flowing, without the optional quota metrics; inactive queue
  - interval: 1m
    input_series:
      - series: 'kueue_pending_workloads{cluster_queue="stuck",status="active"}'
        values: '1x90'
      - series: 'kueue_pending_workloads{cluster_queue="stuck",status="inadmissible"}'
        values: '0x90'
      - series: 'kueue_cluster_queue_resource_usage{cohort="infratech",cluster_queue="stuck",flavor="h100",resource="nvidia.com/gpu"}'
        values: '0x90'
      - series: 'kueue_cluster_queue_nominal_quota{cohort="infratech",cluster_queue="stuck",flavor="h100",resource="nvidia.com/gpu"}'
        values: '4x90'
      - series: 'kueue_pending_workloads{cluster_queue="full",status="active"}'
        values: '3x90'
      - series: 'kueue_cluster_queue_resource_usage{cohort="infratech",cluster_queue="full",flavor="h100",resource="nvidia.com/gpu"}'
        values: '8x90'
      - series: 'kueue_cluster_queue_nominal_quota{cohort="infratech",cluster_queue="full",flavor="h100",resource="nvidia.com/gpu"}'
        values: '8x90'
      - series: 'kueue_pending_workloads{cluster_queue="flowing",status="active"}'
        values: '2x90'
      - series: 'kueue_admitted_workloads_total{cluster_queue="flowing"}'
        values: '0+1x90'
      - series: 'kueue_cluster_queue_resource_usage{cohort="infratech",cluster_queue="flowing",flavor="h100",resource="nvidia.com/gpu"}'
        values: '1x90'
      - series: 'kueue_cluster_queue_nominal_quota{cohort="infratech",cluster_queue="flowing",flavor="h100",resource="nvidia.com/gpu"}'
        values: '4x90'
      - series: 'kueue_pending_workloads{cluster_queue="bare",status="inadmissible"}'
        values: '1x90'
      - series: 'kueue_cluster_queue_status{cluster_queue="stopped",status="pending"}'
        values: '1x90'
      - series: 'kueue_cluster_queue_status{cluster_queue="stopped",status="active"}'
        values: '0x90'
      - series: 'kueue_cluster_queue_status{cluster_queue="full",status="active"}'
        values: '1x90'
      - series: 'kueue_cluster_queue_status{cluster_queue="full",status="pending"}'
        values: '0x90'
    alert_rule_test:
      - {eval_time: 50m, alertname: KueueWorkloadsPendingTooLong, exp_alerts: []}
      - eval_time: 70m
        alertname: KueueWorkloadsPendingTooLong
        exp_alerts:
          - exp_labels: {severity: warning, cluster_queue: stuck}
          - exp_labels: {severity: warning, cluster_queue: bare}
      - eval_time: 20m
        alertname: KueueClusterQueueInactive
        exp_alerts:
          - exp_labels: {severity: warning, cluster_queue: stopped, status: pending}
  # vLLM
  - interval: 1m
    input_series:
      - series: 'vllm:num_requests_waiting{namespace="serving",pod="p1",model_name="lucie-7b",engine="0"}'
        values: '20x20'
      - series: 'vllm:num_requests_waiting{namespace="serving",pod="p2",model_name="lucie-7b",engine="0"}'
        values: '5x20'
      - series: 'vllm:num_requests_waiting{namespace="serving",pod="p3",model_name="mistral",engine="0"}'
        values: '3x20'
    alert_rule_test:
      - eval_time: 15m
        alertname: VllmRequestsQueueing
        exp_alerts:
          - exp_labels: {severity: warning, namespace: serving, model_name: lucie-7b}
"""


def _promtool(tmp_path: Path, rules: dict, tests: str) -> subprocess.CompletedProcess:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    (tmp_path / "tests.yaml").write_text(tests, encoding="utf-8")
    return subprocess.run([PROMTOOL, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)


def _without_annotations(spec: dict) -> dict:
    for _, rule in alerts(spec):
        rule.pop("annotations", None)
    return spec


@needs_promtool
def test_promtool_checks_the_rule_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(data_text("rules.yaml"), encoding="utf-8")
    done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_alerts_fire_as_documented(tmp_path):
    done = _promtool(tmp_path, _without_annotations(load_rules()), SCENARIOS)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_pending_alert_follows_the_limit_the_platform_writes(tmp_path):
    """monitoring.rules() writes the stack's pending_alert_minutes into `for`: with 30m, a
    queue stuck since the start fires at 40 minutes, not at 20."""
    spec = _without_annotations(load_rules())
    for _, rule in alerts(spec):
        if rule["alert"] == "KueueWorkloadsPendingTooLong":
            rule["for"] = "30m"
    tests = """\
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'kueue_pending_workloads{cluster_queue="stuck",status="active"}'
        values: '1x60'
    alert_rule_test:
      - {eval_time: 20m, alertname: KueueWorkloadsPendingTooLong, exp_alerts: []}
      - eval_time: 40m
        alertname: KueueWorkloadsPendingTooLong
        exp_alerts:
          - exp_labels: {severity: warning, cluster_queue: stuck}
"""
    done = _promtool(tmp_path, spec, tests)
    assert done.returncode == 0, done.stdout + done.stderr
