"""`infratech jobs watch NAME` on the recorded Kueue Workloads (fixtures/workloads) and the trainer's
JSON metric lines in rank 0's log: the state followed until the job ends, the latest metrics,
`--once`, plain lines off a terminal."""

from __future__ import annotations

import argparse
import copy
import io
import json

from fake_cluster import FakeCluster, workloads

from infratech.cli.submit import cli, jobs, watch

BY_JOB = {jobs.status(w).job: w for w in workloads()}


def pod(name, job):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "pretraining", "labels": {jobs.JOB_LABEL: job}},
            "spec": {"nodeName": "gra11-h100-0"}, "status": {"phase": "Running", "containerStatuses": [{"name": "node", "ready": True, "restartCount": 0, "state": {"running": {}}}]}}


def metric(step, loss):
    return json.dumps({"step": step, "loss": loss, "grad_norm": 0.5, "lr": 3e-4, "tokens_per_s": 41234.5,
                       "tokens_per_s_per_device": 41234.5, "mfu": 0.3821, "step_time_s": 0.2, "tokens_seen": step * 8192})


def trainer_log(*steps):
    lines = ["[rank0] data: 2,000 sequences of 128 tokens", '{"not": "a metric line"}']
    for step, loss in steps:
        lines += [metric(step, loss), f"[rank0] checkpoint step-{step:09d} committed"]
    return "\n".join(lines) + "\n"


def as_pending(wl):
    """The same Workload before admission: what Kueue wrote while the quota was short."""
    wl = copy.deepcopy(wl)
    wl["status"] = {"conditions": [{"type": "QuotaReserved", "status": "False", "reason": "Pending", "lastTransitionTime": "2026-09-01T07:59:00Z",
                                    "message": "couldn't assign flavors to pod set node: insufficient unused quota for nvidia.com/gpu in flavor h100-80gb, 1 more needed"}]}
    return wl


def as_finished(wl, reason, message):
    wl = copy.deepcopy(wl)
    wl["status"]["conditions"].append({"type": "Finished", "status": "True", "reason": reason, "message": message,
                                       "lastTransitionTime": "2026-09-01T09:00:00Z"})
    return wl


class Timeline:
    """Each poll's sleep moves the cluster to the next recorded moment (no clock involved)."""

    def __init__(self, cluster, moments):
        self.cluster, self.moments, self.sleeps = cluster, list(moments), []

    def __call__(self, seconds):
        self.sleeps.append(seconds)
        workload, log = self.moments.pop(0)
        self.cluster.objects = [o for o in self.cluster.objects if o["kind"] != "Workload"] + [workload]
        self.cluster._logs["tiny-node-0-0-x7k2p"] = log


def parse(argv):
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command", required=True), "ovh-gra11")
    return parser.parse_args(argv)


def test_latest_metrics_should_be_the_last_trainer_line_of_the_log():
    assert watch.latest_metrics(trainer_log((10, 3.1), (20, 2.7)))["step"] == 20
    assert watch.latest_metrics("starting\n{\"not\": \"a metric\"}\n{broken json\n") is None


def test_watch_should_follow_the_job_from_pending_to_succeeded_with_its_metrics():
    tiny = BY_JOB["tiny"]
    cluster = FakeCluster([as_pending(tiny), pod("tiny-node-0-0-x7k2p", "tiny")], logs={"tiny-node-0-0-x7k2p": ""})
    timeline = Timeline(cluster, [(tiny, trainer_log((10, 3.1))), (tiny, trainer_log((10, 3.1), (20, 2.7))),
                                  (as_finished(tiny, "Succeeded", "TrainJob completed"), trainer_log((10, 3.1), (20, 2.7), (30, 2.5)))])
    out = io.StringIO()
    code = watch.watch(cluster, "pretraining", "tiny", interval_s=7, sleep=timeline, stream=out)
    text = out.getvalue()
    assert code == 0 and timeline.sleeps == [7, 7, 7]
    assert "\r" not in text and "\x1b" not in text  # plain lines off a terminal
    lines = text.splitlines()
    states = [line.split("] ", 1)[1].split(":", 1)[0] for line in lines if line.endswith(": started")]
    assert states == ["Pending", "Running", "Succeeded"]
    assert any("1 more needed" in line for line in lines)  # Kueue's reason while it waits
    steps = [line for line in lines if "] Running: " in line and "loss" in line]
    assert [s.split(" · step ")[1].split(" ")[0] for s in steps] == ["10", "20"]
    assert "loss 2.7000 · 41,234 tok/s · MFU 38.2%" in steps[-1]
    assert "changed: final metrics: step 30 · loss 2.5000" in text  # the summary at the end


def test_watch_should_exit_1_when_the_job_fails():
    cluster = FakeCluster([BY_JOB["broken"]])
    out = io.StringIO()
    assert watch.watch(cluster, "pretraining", "broken", sleep=lambda s: None, stream=out) == 1
    assert "BackoffLimitExceeded" in out.getvalue()


def test_watch_should_exit_1_when_the_workload_disappears():
    cluster = FakeCluster([BY_JOB["tiny"]])
    out = io.StringIO()

    def cancelled(seconds):
        cluster.objects = []

    assert watch.watch(cluster, "pretraining", "tiny", sleep=cancelled, stream=out) == 1
    assert "the Workload is gone" in out.getvalue()


def test_once_should_print_one_snapshot(capsys, project):
    cluster = FakeCluster([*workloads(), pod("tiny-node-0-0-x7k2p", "tiny")], logs={"tiny-node-0-0-x7k2p": trainer_log((20, 2.7))})
    code = cli.run(parse(["jobs", "watch", "tiny", "-n", "pretraining", "--once"]), project, cluster_factory=lambda c: cluster)
    assert code == 0
    assert capsys.readouterr().out == "tiny: Running (admitted, every pod ready); step 20 · loss 2.7000 · 41,234 tok/s · MFU 38.2% · 163,840 tokens seen\n"


def test_watch_of_a_finished_job_should_return_at_once_with_its_outcome(capsys, project):
    cluster = FakeCluster(workloads())
    code = cli.run(parse(["jobs", "watch", "tiny-eval-ok", "-n", "pretraining"]), project, cluster_factory=lambda c: cluster)
    assert code == 0
    assert "Succeeded: Job finished successfully" in capsys.readouterr().err


def test_an_unknown_job_or_a_bad_interval_should_be_bad_input(capsys, project):
    cluster = FakeCluster(workloads())
    assert cli.run(parse(["jobs", "watch", "nope", "-n", "pretraining", "--once"]), project, cluster_factory=lambda c: cluster) == 2
    assert "no job 'nope' in namespace pretraining" in capsys.readouterr().err
    assert cli.run(parse(["jobs", "watch", "tiny", "-n", "pretraining", "--interval", "0"]), project, cluster_factory=lambda c: cluster) == 2
    assert "--interval: 0 is not a positive number of seconds" in capsys.readouterr().err
