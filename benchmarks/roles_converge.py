"""First converge and no-op re-run of playbooks/gpu_node.yml on 1 and on 4 booted Debian 12 hosts.

    sudo .venv/bin/python benchmarks/roles_converge.py          # or: make bench-roles (as root)

Hosts are systemd-nspawn containers (tests/roles/roles_harness.py), the NVIDIA repository and the
RKE2 artifacts are the tests' stand-ins (tests/roles/standins.py), so what is timed is Ansible and
the roles' own work: apt from the Debian mirror, templates, services, handlers. Pipelining and fact
caching are on (ansible.cfg); the 4-host no-op is also timed with both off for comparison.
Targets (issue 5): no-op <= 20% of the first converge; 4 hosts <= 1.5x one host.
Results: printed as a Markdown table and written to build/bench/roles_converge.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "roles"))

import roles_harness as harness
import standins

PREPARE = ROOT / "tests/roles/playbooks/prepare.yml"
GPU_NODE = ROOT / "playbooks/gpu_node.yml"


def busy_cpu_seconds() -> float:
    """CPU time spent by the whole machine (all processes, all cores) since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--one-host-only", action="store_true", help="boot and time one host only (quick profile)")
    args = ap.parse_args()
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the booted hosts are shut down
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    reason = harness.skip_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="roles-bench-"))
    web = standins.build_nvidia_repo(work / "web")
    artifacts = standins.build_rke2_artifacts(work / "rke2")
    names = ["one-1"] if args.one_host_only else ["one-1", "four-1", "four-2", "four-3", "four-4"]
    results: dict[str, float] = {}
    cpu_s: dict[str, float] = {}
    with standins.RepoServer(web) as server, standins.SupervisorStandIn() as supervisor, \
            harness.Fleet(names, work / "fleet") as fleet:
        url = "http://{{ test_controller_address }}:%d/%s/" % (server.port, standins.REPO_PATH)
        inv = fleet.inventory(work / "hosts.yml", groups={"gpu_nodes": names}, group_vars={"gpu_nodes": {
            "nvidia_driver_repo_url": url, "nvidia_driver_repo_key_url": url + standins.KEY_NAME,
            "nvidia_container_toolkit_cdi": "always", "rke2_node_artifacts_dir": str(artifacts),
            "rke2_node_version": standins.RKE2_VERSION, "rke2_node_token": "bench-token",
            "rke2_node_server_url": "https://{{ test_controller_address }}:%d" % supervisor.port, "gpu_health_kubectl": "/usr/local/bin/kubectl",
            "gpu_health_kube_host": "{{ inventory_hostname }}"}})
        facts = work / "facts"

        times_dir = ROOT / "build/bench/roles_task_times"
        times_dir.mkdir(parents=True, exist_ok=True)

        def timed(label, limit, env=None):
            slug = label.replace(" ", "_").replace(",", "")
            profile = {"ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "benchmarks/callback_plugins"),
                       "ANSIBLE_CALLBACKS_ENABLED": "task_times",
                       "INFRATECH_TASK_TIMES": str(times_dir / f"{slug}.json")}
            cpu0 = busy_cpu_seconds()
            res = harness.run_playbook(GPU_NODE, inv, facts, limit=limit, env={**profile, **(env or {})})
            cpu = busy_cpu_seconds() - cpu0
            if res.rc != 0:
                log = times_dir.parent / f"roles_failed_{slug}.log"
                log.write_text(res.output)
                fatal = [line for line in res.output.splitlines() if line.startswith(("fatal:", "failed:"))]
                print("\n".join(fatal) or res.output[-4000:], file=sys.stderr)
                raise SystemExit(f"{label}: ansible-playbook failed; whole output in {log}")
            changed = sum(c["changed"] for c in res.recap().values())
            results[label] = round(res.seconds, 1)
            results[label + " changed"] = changed
            cpu_s[label] = round(cpu, 1)
            print(f"{label}: {res.seconds:.1f} s, changed={changed}, machine CPU {cpu:.1f} s "
                  f"({cpu / res.seconds:.2f} of {os.cpu_count()} cores busy)", flush=True)

        prep = harness.run_playbook(PREPARE, inv, facts)  # test doubles of the GPU tools; not timed
        assert prep.rc == 0, prep.output[-3000:]
        timed("1 host first converge", "one-1")
        timed("1 host no-op re-run", "one-1")
        if args.one_host_only:
            print(json.dumps({"results_s": results, "machine_cpu_s": cpu_s}, indent=1))
            return 0
        four = "four-1,four-2,four-3,four-4"
        timed("4 hosts first converge", four)
        timed("4 hosts no-op re-run", four)
        timed("4 hosts no-op re-run, no pipelining, no fact cache", four,
              env={"ANSIBLE_PIPELINING": "False", "ANSIBLE_GATHERING": "implicit"})
    one, one_noop = results["1 host first converge"], results["1 host no-op re-run"]
    four_first, four_noop = results["4 hosts first converge"], results["4 hosts no-op re-run"]
    ncpu = os.cpu_count() or 1
    summary = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{ncpu} CPUs",
        "results_s": results,
        "noop_over_first_1_host": round(one_noop / one, 3),
        "noop_over_first_4_hosts": round(four_noop / four_first, 3),
        "four_over_one_first": round(four_first / one, 3),
        "four_over_one_noop": round(four_noop / one_noop, 3),
        "machine_cpu_s": cpu_s,
        # 4 hosts need about 4x the CPU time of one; with N cores the wall time cannot fall below
        # 4 x CPU(1 host) / N: the best 4-over-1 ratio this machine allows
        "four_over_one_floor_first": round(max(1.0, 4 * cpu_s["1 host first converge"] / (ncpu * one)), 3),
        "four_over_one_floor_noop": round(max(1.0, 4 * cpu_s["1 host no-op re-run"] / (ncpu * one_noop)), 3),
    }
    out = ROOT / "build/bench/roles_converge.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print("\n| run | seconds | tasks changed | machine CPU s | cores busy |\n|---|---:|---:|---:|---:|")
    for key, value in results.items():
        if not key.endswith(" changed"):
            print(f"| {key} | {value} | {results[key + ' changed']} | {cpu_s[key]} | {cpu_s[key] / value:.2f} |")
    print(f"\nno-op / first: 1 host {summary['noop_over_first_1_host']:.0%}, 4 hosts {summary['noop_over_first_4_hosts']:.0%} (target <= 20%)")
    print(f"4 hosts / 1 host: first {summary['four_over_one_first']:.2f}x, no-op {summary['four_over_one_noop']:.2f}x (target <= 1.5x); "
          f"CPU-bound floor on {ncpu} cores: first {summary['four_over_one_floor_first']:.2f}x, no-op {summary['four_over_one_floor_noop']:.2f}x")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
