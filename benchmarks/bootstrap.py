"""First converge and rerun of the bootstrap phase of a self-built cluster on 3 booted hosts.

    sudo .venv/bin/python benchmarks/bootstrap.py          # or: make bench-bootstrap (as root)

The same path as ``infratech up STACK --phase bootstrap`` (infratech/cli/phases.py Runner and
run_ansible: playbooks/site.yml, then fetch_kubeconfig.yml) on the hosts tests/cluster uses: the
``baremetal-onprem`` stack file with its addresses replaced by three systemd-nspawn Debian 12 hosts
(1 RKE2 server, 2 H100 agents), NVIDIA's packages and RKE2's release as the tests' stand-ins
(tests/roles/standins.py). What is timed is Ansible and the roles' own work on 3 hosts.
Results: printed as a Markdown table and written to build/bench/bootstrap.json.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "roles"), str(ROOT / "tests" / "cluster")]

import cluster_harness as cluster  # noqa: E402
import roles_harness as harness  # noqa: E402
import standins  # noqa: E402

from infratech.cli.stacks import find_project  # noqa: E402


def busy_cpu_seconds() -> float:
    """CPU time spent by the whole machine (all processes, all cores) since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the booted hosts are shut down
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    reason = harness.skip_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bootstrap-bench-"))
    try:
        return _measure(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(work: Path) -> int:
    web = standins.build_kernel_headers_repo(standins.build_nvidia_repo(work / "web"))
    artifacts = standins.build_rke2_artifacts(work / "rke2-artifacts")
    reports = work / "gpu-health-reports"
    reports.mkdir()
    rows = []
    with standins.RepoServer(web) as server, harness.Fleet(list(cluster.HOSTS), work / "fleet") as fleet:
        cluster.prepare(fleet, work, server.port, artifacts, reports)  # the test doubles' setup: not timed
        token, outputs = cluster.new_token(), cluster.stack_outputs(find_project(ROOT), fleet, work)
        site = cluster.Site(fleet=fleet, workdir=work, outputs=outputs, token=token,
                            stack=cluster.StackDouble(outputs, token),
                            node_vars=cluster.write_node_vars(work / "node-vars.yml", server.port, artifacts, reports),
                            environ=cluster.ansible_environ(fleet, work))
        for label in ("first converge", "rerun"):
            cpu0, load = busy_cpu_seconds(), os.getloadavg()[0]
            run = site.bootstrap()
            cpu = busy_cpu_seconds() - cpu0
            if run.error:
                log = ROOT / "build/bench/bootstrap_failed.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(run.output)
                raise SystemExit(f"{label}: {run.error}; whole output in {log}")
            changed = sum(c["changed"] for c in run.recaps()[0].values())
            rows.append({"run": label, "seconds": round(run.seconds, 1), "site_yml_changed": changed,
                         "machine_cpu_s": round(cpu, 1), "load_average_1min_before": round(load, 1)})
            print(f"{label}: {run.seconds:.1f} s, site.yml changed={changed}, machine CPU {cpu:.1f} s, "
                  f"load average before {load:.1f}", flush=True)
    summary = {"measured_at": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} CPUs",
               "hosts": cluster.HOSTS, "runs": rows,
               "rerun_over_first": round(rows[1]["seconds"] / rows[0]["seconds"], 3)}
    out = ROOT / "build/bench/bootstrap.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print("\n| run (3 hosts) | seconds | site.yml tasks changed | machine CPU s | load average before |\n|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['run']} | {row['seconds']} | {row['site_yml_changed']} | {row['machine_cpu_s']} | "
              f"{row['load_average_1min_before']} |")
    print(f"\nrerun / first: {summary['rerun_over_first']:.0%}\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
