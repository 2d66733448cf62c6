"""How the offline plan's wall time and peak memory grow with pool sizes and the number of teams.

    .venv/bin/python benchmarks/plan_scaling.py [--repeat N] [--out docs/benchmarks.md] [--strict]

For each case (total max node count 10, 100, 1,000 crossed with 5 and 50 teams) it writes a
throw-away project (this repository's ``Pulumi.yaml`` and ``__main__.py`` plus a generated
``stacks/Pulumi.bench.yaml``: an OVHcloud GRA11 cluster with a system pool and three GPU pools,
h100-380, l40s-90 and a100-180, and teams holding a GPU quota on each GPU model) and measures it
in a fresh Python process, so every case starts with a clean Pulumi runtime and its own peak RSS:

- import time: ``infratech.cli.plan``, ``infratech.cli.stacks`` and the modules the program imports
  (``infratech.config``, ``infratech.program.providers.ovh``, ``pulumi_ovh`` and its lazily loaded
  ``cloudproject`` module);
- first plan: ``record(find_project(dir), "bench")`` once, right after the imports (warm-up);
- plan: the median of ``--repeat`` further calls of ``record`` (``time.perf_counter``);
- peak RSS of the process (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), and after the imports;
- the number of resources recorded, checked against the generated stack (4 node pools whose
  ``maxNodes`` add up to the case's total, one ClusterQueue per team).

What the figures can and cannot show: a node count is an argument of a node-pool resource
(``maxNodes``), not one resource per node, so nodes add no resources; every team adds its
namespace and guardrails (quota, limits, service account, object-store secret, role and binding,
network policies) and its ClusterQueue and LocalQueue, so plan time grows with the teams.

The target checked: a stack of 1,000 nodes and 50 teams plans in under 10 s, counted the way a
user pays for it in a fresh process (import time + first plan), which is stricter than the median.
``--vms`` runs the self-built series instead (plan_scaling_vms.py: 10, 100 and 1,000 GPU VMs).
This file is over 400 lines because the managed-pool series reports in one place; new series go
in modules of their own beside it.

The script exits 0 whether or not the target holds (``--strict``: exit 1 when it does not); it
exits 2 when a case fails to run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import plan_scaling_vms  # the self-built series (--vms), beside this file

ROOT = Path(__file__).resolve().parent.parent
STACK = "bench"
NODE_TOTALS = (10, 100, 1000)
TEAM_COUNTS = (5, 50)
GPU_POOLS = (  # name, flavour, role, GPU model id of the flavour (infratech/catalog.yaml)
    ("h100", "h100-380", "training", "h100-80gb"),
    ("l40s", "l40s-90", "inference", "l40s"),
    ("a100", "a100-180", "training", "a100-80gb"),
)
TARGET_NODES, TARGET_TEAMS, TARGET_S = 1000, 50, 10.0
SECTION_BEGIN = "<!-- plan_scaling:begin (written by benchmarks/plan_scaling.py --out) -->"
SECTION_END = "<!-- plan_scaling:end -->"


# -- the generated stack ---------------------------------------------------------------------------
def pool_sizes(total: int) -> list[int]:
    """Max node counts of the system pool and the three GPU pools, adding up to ``total``:
    a tenth for the system pool, the rest split evenly over the GPU pools (10 -> 1+3+3+3)."""
    system = max(1, total // 10)
    share, extra = divmod(total - system, len(GPU_POOLS))
    return [system] + [share + (1 if i < extra else 0) for i in range(len(GPU_POOLS))]


def stack_config(total_nodes: int, teams: int) -> dict:
    sizes = pool_sizes(total_nodes)
    assert sum(sizes) == total_nodes and all(1 <= s <= 1000 for s in sizes)
    pools = [
        {"name": "system", "flavor": "b3-16", "role": "system", "min_nodes": 1,
         "desired_nodes": min(3, sizes[0]), "max_nodes": sizes[0], "autoscale": True}
    ]
    for (name, flavor, role, _model), size in zip(GPU_POOLS, sizes[1:]):
        pools.append({"name": name, "flavor": flavor, "role": role, "min_nodes": 0,
                      "desired_nodes": size // 2, "max_nodes": size, "autoscale": True})
    gpu_capacity = {model: size for (_n, _f, _r, model), size in zip(GPU_POOLS, sizes[1:])}
    team_list = [
        {"name": f"team-{i:03d}",
         "gpu_quota": {model: max(1, cap // teams) for model, cap in gpu_capacity.items()}}
        for i in range(1, teams + 1)
    ]
    return {
        "config": {
            "ovh:endpoint": "ovh-eu",
            "infratech:provider": "ovh",
            "infratech:name": "bench-gra11",
            "infratech:region": "GRA11",
            "infratech:labels": {"owner": "platform", "cost-centre": "benchmark"},
            "infratech:ovh": {"api_allowed_cidrs": ["203.0.113.0/24"]},
            "infratech:pools": pools,
            "infratech:teams": team_list,
        }
    }


def write_project(directory: Path, total_nodes: int, teams: int) -> None:
    import yaml  # the project's dependency; only needed to write the stack file

    shutil.copy2(ROOT / "Pulumi.yaml", directory / "Pulumi.yaml")
    shutil.copy2(ROOT / "__main__.py", directory / "__main__.py")
    (directory / "stacks").mkdir()
    text = yaml.safe_dump(stack_config(total_nodes, teams), sort_keys=False)
    (directory / "stacks" / f"Pulumi.{STACK}.yaml").write_text(text, encoding="utf-8")


# -- one case, in its own process ------------------------------------------------------------------
def _rss_now_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def worker(project_dir: Path, repeat: int, total_nodes: int, teams: int, result_file: Path) -> None:
    import gc
    import resource

    t0 = time.perf_counter()
    import pulumi_ovh  # imported by the program; timed here, not in the first plan
    import infratech.config  # noqa: F401
    import infratech.program.providers.ovh  # noqa: F401
    import infratech.program.outputs  # noqa: F401

    pulumi_ovh.cloudproject.KubeNodePool, pulumi_ovh.CloudStorageObjectBucket  # lazily loaded submodules
    from infratech.cli.plan import record
    from infratech.cli.stacks import find_project

    import_s = time.perf_counter() - t0
    rss_after_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    project = find_project(project_dir)
    assert project.root == project_dir.resolve(), f"found {project.root}, not the generated project"

    t0 = time.perf_counter()
    rec = record(project, STACK)
    first_s = time.perf_counter() - t0

    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        rec = record(project, STACK)
        times.append(time.perf_counter() - t0)

    # The generated stack went through: every pool and team made it into the recording.
    pools = rec.by_type("ovh:CloudProject/kubeNodePool:KubeNodePool")
    max_nodes = sum(int(p.inputs["maxNodes"]) for p in pools)
    assert len(pools) == 1 + len(GPU_POOLS), f"{len(pools)} node pools recorded"
    assert max_nodes == total_nodes, f"maxNodes add up to {max_nodes}, not {total_nodes}"
    assert len(rec.outputs.get("teams", [])) == teams, "teams output does not list every team"
    queues = rec.by_type("kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue")
    assert len(queues) == teams, f"{len(queues)} ClusterQueues recorded for {teams} teams"

    by_type: dict[str, int] = {}
    for r in rec.resources:
        by_type[r.type] = by_type.get(r.type, 0) + 1
    result = {
        "import_s": import_s,
        "first_s": first_s,
        "times_s": times,
        "median_s": statistics.median(times),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_after_import_kib": rss_after_import,
        "rss_end_kib": _rss_now_kib(),
        "resources": len(rec.resources),
        "node_pools": len(pools),
        "max_nodes": max_nodes,
        "teams": len(rec.outputs["teams"]),
        "by_type": dict(sorted(by_type.items())),
    }
    result_file.write_text(json.dumps(result), encoding="utf-8")


def run_case(total_nodes: int, teams: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"plan-bench-{total_nodes}n-{teams}t-") as tmp:
        directory = Path(tmp)
        write_project(directory, total_nodes, teams)
        result_file = directory / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(directory),
               "--repeat", str(repeat), "--nodes", str(total_nodes), "--teams", str(teams),
               "--result", str(result_file)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=directory, capture_output=True, text=True)
        process_s = time.perf_counter() - t0
        if proc.returncode != 0 or not result_file.is_file():
            raise RuntimeError(
                f"case {total_nodes} nodes / {teams} teams failed (exit {proc.returncode}):\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
            )
        result = json.loads(result_file.read_text(encoding="utf-8"))
    result.update(nodes=total_nodes, teams=teams, process_s=process_s, cold_s=result["import_s"] + result["first_s"])
    return result


# -- the machine -----------------------------------------------------------------------------------
def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(len(os.sched_getaffinity(0)))
    mem = "unknown"
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    try:
        from importlib.metadata import version

        pulumi_v, pulumi_ovh_v = version("pulumi"), version("pulumi_ovh")
    except Exception:  # noqa: BLE001  informational only
        pulumi_v = pulumi_ovh_v = "unknown"
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "nproc": nproc,
        "cpu": cpu,
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "pulumi": pulumi_v,
        "pulumi_ovh": pulumi_ovh_v,
        "commit": commit,
    }


# -- analysis and report ---------------------------------------------------------------------------
def growth(ratio: float, scale: int) -> str:
    if ratio <= 1.25:
        return "flat"
    if ratio <= scale:
        return "linear or better"
    return "WORSE than linear"


def analyse(results: list[dict]) -> dict:
    cell = {(r["nodes"], r["teams"]): r for r in results}
    lo_n, hi_n = NODE_TOTALS[0], NODE_TOTALS[-1]
    lo_t, hi_t = TEAM_COUNTS[0], TEAM_COUNTS[-1]
    node_ratios = []
    for t in TEAM_COUNTS:
        ratio = cell[(hi_n, t)]["median_s"] / cell[(lo_n, t)]["median_s"]
        node_ratios.append({"teams": t, "ratio": ratio, "scale": hi_n // lo_n, "growth": growth(ratio, hi_n // lo_n)})
    team_ratios = []
    for n in NODE_TOTALS:
        ratio = cell[(n, hi_t)]["median_s"] / cell[(n, lo_t)]["median_s"]
        team_ratios.append({"nodes": n, "ratio": ratio, "scale": hi_t // lo_t, "growth": growth(ratio, hi_t // lo_t)})
    target = cell[(TARGET_NODES, TARGET_TEAMS)]
    linear = all(r["ratio"] <= r["scale"] for r in node_ratios + team_ratios)
    return {
        "node_ratios": node_ratios,
        "team_ratios": team_ratios,
        "linear_or_better": linear,
        "target_case": target,
        "target_holds": target["cold_s"] < TARGET_S and target["median_s"] < TARGET_S,
        "resource_counts": sorted({r["resources"] for r in results}),
    }


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def table(results: list[dict]) -> list[str]:
    lines = [
        "| total max nodes | teams | resources | import (s) | first plan (s) | plan, median (s) | min-max (s) | import + first plan (s) | whole process (s) | RSS after import (MiB) | peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['nodes']:,} | {r['teams']} | {r['resources']} | {r['import_s']:.2f} | {r['first_s']:.3f} "
            f"| {r['median_s']:.3f} | {min(r['times_s']):.3f}-{max(r['times_s']):.3f} | {r['cold_s']:.2f} | {r['process_s']:.2f} "
            f"| {mib(r['rss_after_import_kib'])} | {mib(r['peak_rss_kib'])} |"
        )
    return lines


def report_lines(results: list[dict], analysis: dict, info: dict, repeat: int, command: str, elapsed: float) -> list[str]:
    target = analysis["target_case"]
    verdict = "HOLDS" if analysis["target_holds"] else "DOES NOT HOLD"
    counts = analysis["resource_counts"]
    first = results[0]
    lines = [
        "## Offline plan scaling",
        "",
        "How the offline plan (`record()`, what `infratech plan` runs) grows with pool sizes and teams.",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Machine: {info['nproc']} CPUs (`nproc`), {info['cpu']}, {info['memory']} RAM, {info['os']}; "
        f"{info['python']}, pulumi {info['pulumi']}, pulumi_ovh {info['pulumi_ovh']}; commit {info['commit']}. "
        f"Whole run: {elapsed:.0f} s.",
        "",
        "Each case is a generated OVHcloud GRA11 stack: a system pool (b3-16) and three GPU pools "
        "(h100-380, l40s-90, a100-180) whose `max_nodes` add up to the total (a tenth for the system "
        "pool, the rest split evenly), and N teams, each with a `gpu_quota` on h100-80gb, l40s and "
        "a100-80gb. Each case runs in a fresh Python process: imports timed apart, one first plan "
        f"(warm-up), then the median of {repeat} plans (`time.perf_counter`); peak RSS is the "
        "process's `ru_maxrss`, imports included. \"Whole process\" is the subprocess's wall time seen "
        "from outside: interpreter start, imports, warm-up and the timed plans.",
        "",
        *table(results),
        "",
        "Ratios of the median plan time:",
        "",
    ]
    for r in analysis["node_ratios"]:
        lines.append(f"- {NODE_TOTALS[-1]:,} / {NODE_TOTALS[0]} nodes, {r['teams']} teams: "
                     f"x{r['ratio']:.2f} for x{r['scale']} nodes, {r['growth']}")
    for r in analysis["team_ratios"]:
        lines.append(f"- {TEAM_COUNTS[-1]} / {TEAM_COUNTS[0]} teams, {r['nodes']:,} nodes: "
                     f"x{r['ratio']:.2f} for x{r['scale']} teams, {r['growth']}")
    cell = {(r["nodes"], r["teams"]): r["median_s"] for r in results}
    (lo_n, hi_n), (lo_t, hi_t) = (NODE_TOTALS[0], NODE_TOTALS[-1]), (TEAM_COUNTS[0], TEAM_COUNTS[-1])
    per_teams = statistics.mean(cell[(n, hi_t)] - cell[(n, lo_t)] for n in NODE_TOTALS)
    per_nodes = statistics.mean(cell[(hi_n, t)] - cell[(lo_n, t)] for t in TEAM_COUNTS)
    slowest = max(cell.values())
    lines += [
        "",
        f"In absolute terms: {hi_t} teams instead of {lo_t} add {per_teams * 1000:+.1f} ms to the median plan "
        f"(mean over the node totals, {per_teams / (hi_t - lo_t) * 1000:+.2f} ms per added team); "
        f"{hi_n:,} nodes instead of {lo_n} add {per_nodes * 1000:+.1f} ms (mean over the team counts). "
        f"With every median under {slowest * 1000:.0f} ms, differences of a few tens of milliseconds between "
        "processes move these ratios from one run to the next (the min-max column shows the spread inside "
        "one process only); read them as an order of magnitude.",
    ]
    lines += [
        "",
        f"Target \"{TARGET_NODES:,} nodes and {TARGET_TEAMS} teams plan in under {TARGET_S:.0f} s\": **{verdict}** "
        f"(import + first plan {target['cold_s']:.2f} s in a fresh process, median plan {target['median_s']:.3f} s, "
        f"peak RSS {mib(target['peak_rss_kib'])} MiB).",
        "",
        "What this does and does not show: "
        + (f"every case records the same {counts[0]} resources ("
           if len(counts) == 1 else f"the cases record {', '.join(map(str, counts))} resources (")
        + ", ".join(f"{n} {t.rsplit(':', 1)[-1]}" for t, n in first["by_type"].items())
        + "). A node count is the `maxNodes` argument of a node-pool resource, not one resource per "
        "node, so more nodes add no resources and the node ratios measure the fixed cost of running "
        "the program under the Pulumi mock runtime. Every team adds its namespace, guardrails "
        "(quota, limits, service account, object-store secret, role, binding, network policies) and "
        "its ClusterQueue and LocalQueue: the team ratios are the ones that grow, about linearly "
        "with the resources recorded.",
    ]
    return lines


def write_out(path: Path, lines: list[str], begin: str = SECTION_BEGIN, end: str = SECTION_END) -> None:
    section = "\n".join([begin, *lines, end]) + "\n"
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            tail = rest.split(end, 1)[1].lstrip("\n")
            text = head + section + ("\n" + tail if tail else "")
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "# Benchmarks\n\nScripts in `benchmarks/` (see benchmarks/README.md); figures below are from real runs.\n\n" + section
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed plans per case after one warm-up (default 3)")
    parser.add_argument("--out", type=Path, help="write the results as the 'Offline plan scaling' section of this Markdown file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target does not hold")
    parser.add_argument("--vms", action="store_true",
                        help="the self-built series instead: 10, 100 and 1,000 Outscale GPU VMs (plan_scaling_vms.py)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--vms-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--nodes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--teams", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    if args.worker:
        worker(args.worker, args.repeat, args.nodes, args.teams, args.result)
        return 0
    if args.vms_worker:
        plan_scaling_vms.worker(args.vms_worker, args.repeat, args.nodes, args.result)
        return 0
    if args.vms:
        return plan_scaling_vms.main(args, ROOT, Path(__file__).resolve(), machine, write_out)

    info = machine()
    print(f"machine: nproc={info['nproc']}, {info['cpu']}, {info['memory']} RAM, {info['os']}")
    print(f"python: {info['python']} ({sys.executable}); pulumi {info['pulumi']}, pulumi_ovh {info['pulumi_ovh']}; commit {info['commit']}")
    print(f"cases: {len(NODE_TOTALS) * len(TEAM_COUNTS)}, each in a fresh process, 1 warm-up + {args.repeat} timed plans")
    started = time.perf_counter()
    results = []
    for nodes in NODE_TOTALS:
        for teams in TEAM_COUNTS:
            try:
                r = run_case(nodes, teams, args.repeat)
            except RuntimeError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            results.append(r)
            print(f"  {nodes:>5,} nodes {teams:>3} teams: {r['resources']} resources, import {r['import_s']:.2f} s, "
                  f"first {r['first_s']:.3f} s, median {r['median_s']:.3f} s, peak RSS {mib(r['peak_rss_kib'])} MiB "
                  f"(process {r['process_s']:.1f} s)")
    elapsed = time.perf_counter() - started
    analysis = analyse(results)

    command = ".venv/bin/python benchmarks/plan_scaling.py" + (f" --repeat {args.repeat}" if args.repeat != 3 else "")
    if args.out:
        command += f" --out {args.out}"
    lines = report_lines(results, analysis, info, args.repeat, command, elapsed)
    print()
    print("\n".join(lines[lines.index(""):]))  # the section without its heading
    if args.out:
        write_out(args.out, lines)
        print(f"\nwrote {args.out}")
    print()
    verdict = "HOLDS" if analysis["target_holds"] else "DOES NOT HOLD"
    print(f"TARGET {verdict}: {TARGET_NODES:,} nodes and {TARGET_TEAMS} teams plan in "
          f"{analysis['target_case']['cold_s']:.2f} s (import + first plan; median {analysis['target_case']['median_s']:.3f} s), "
          f"limit {TARGET_S:.0f} s")
    print(f"growth: {'linear or better' if analysis['linear_or_better'] else 'WORSE than linear somewhere'} "
          f"(resources per case: {', '.join(map(str, analysis['resource_counts']))})")
    return 1 if args.strict and not analysis["target_holds"] else 0


if __name__ == "__main__":
    sys.exit(main())
