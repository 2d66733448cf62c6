"""infratech/cli/submit/jobs.py on recorded Kueue Workload objects (fixtures/workloads, each valid
against the Workload CRD of Kueue 0.19.2): admitted, pending with Kueue's reason, inadmissible,
preempted and requeued, evicted by the pods-ready timeout, finished; and `jobs list|status|logs|
cancel` on a cluster holding them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import upstream
from fake_cluster import FakeCluster, workloads

from infratech.cli.submit import jobs

BY_JOB = {jobs.status(w).job: w for w in workloads()}
NOW = datetime(2026, 9, 1, 12, 0, tzinfo=timezone.utc)


def pod(name, job, namespace="pretraining", phase="Running", ready=True, restarts=0, node="gra11-h100-0", waiting=None):
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"infratech.io/job": job}},
        "spec": {"nodeName": node},
        "status": {"phase": phase, "containerStatuses": [{"name": "node", "ready": ready, "restartCount": restarts, "state": state}]},
    }


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: w["metadata"]["name"])
def test_fixtures_should_be_workloads_kueue_would_write(workload):
    upstream.require_upstream()
    assert upstream.validate_custom_object(workload) == []


def test_admitted_with_pods_ready_should_be_running_on_its_flavour():
    s = jobs.status(BY_JOB["tiny"])
    assert (s.state, s.kind, s.queue, s.cluster_queue, s.gpus, s.flavors) == ("Running", "TrainJob", "pretraining", "pretraining", 1, ("h100-80gb",))


def test_admitted_without_ready_pods_should_say_it_waits_for_them():
    wl = BY_JOB["tiny"]
    wl = {**wl, "status": {**wl["status"], "conditions": [c if c["type"] != "PodsReady" else {**c, "status": "False", "reason": "WaitForStart", "message": "Not all pods are ready or succeeded"} for c in wl["status"]["conditions"]]}}
    s = jobs.status(wl)
    assert s.state == "Admitted" and s.reason == "admitted, not all pods are ready or succeeded"


def test_pending_should_give_kueues_reason():
    s = jobs.status(BY_JOB["llama-1b-run3"])
    assert s.state == "Pending"
    assert s.reason == "couldn't assign flavors to pod set node: insufficient unused quota for nvidia.com/gpu in flavor h100-80gb, 3 more needed"
    assert s.gpus == 4 and s.flavors == ()


def test_inadmissible_should_say_what_is_missing():
    s = jobs.status(BY_JOB["tiny-eval"])
    assert (s.state, s.reason, s.kind, s.queue) == ("Inadmissible", "LocalQueue pretrainig doesn't exist", "Job", "pretrainig")


def test_preempted_should_say_by_what_and_that_it_waits_again():
    s = jobs.status(BY_JOB["mistral-ft-7"])
    assert s.state == "Preempted"
    assert s.reason.startswith("preempted: its team borrowed GPUs that their owner took back")
    assert "requeued, pending: couldn't assign flavors" in s.reason
    assert s.evictions == {"Preempted": 1}


def test_pods_ready_timeout_should_be_an_eviction_with_its_requeue_time():
    s = jobs.status(BY_JOB["gang-test"])
    assert s.state == "Evicted"
    assert s.reason == "evicted (PodsReadyTimeout): Exceeded the PodsReady timeout pretraining/trainjob-gang-test-0a1b2; back in the queue at 2026-09-01T07:42:00Z"
    assert (s.requeues, s.evictions) == (2, {"PodsReadyTimeout": 2})


def test_finished_should_tell_success_from_failure():
    assert jobs.status(BY_JOB["tiny-eval-ok"]).state == "Succeeded"
    failed = jobs.status(BY_JOB["broken"])
    assert failed.state == "Failed" and "BackoffLimitExceeded" in failed.reason


def test_deactivated_should_say_kueue_will_not_admit_it():
    wl = {**BY_JOB["llama-1b-run3"], "spec": {**BY_JOB["llama-1b-run3"]["spec"], "active": False}}
    assert jobs.status(wl).state == "Deactivated"


def test_without_conditions_should_be_pending_not_yet_seen():
    wl = {**BY_JOB["tiny"], "status": {}}
    s = jobs.status(wl)
    assert (s.state, s.reason) == ("Pending", "not yet considered by Kueue")


def test_list_should_show_every_job_of_the_namespace_oldest_first():
    cluster = FakeCluster(workloads())
    text = jobs.table(jobs.list_jobs(cluster, "pretraining"), now=NOW)
    lines = text.splitlines()
    assert lines[0].split() == ["JOB", "KIND", "QUEUE", "STATE", "GPUS", "FLAVOR", "AGE", "WHY"]
    assert [line.split()[0] for line in lines[1:]] == ["broken", "tiny-eval-ok", "gang-test", "tiny", "llama-1b-run3", "tiny-eval"]
    assert "Running" in lines[4] and "h100-80gb" in lines[4] and "4h" in lines[4]
    assert "mistral-ft-7" not in text  # another team's namespace


def test_status_should_describe_the_workload_and_its_pods():
    cluster = FakeCluster([*workloads(), pod("tiny-node-0-0-x7k2p", "tiny", restarts=1)])
    text = jobs.describe(cluster, "pretraining", "tiny")
    assert "state:     Running: admitted, every pod ready" in text
    assert "queue:     pretraining -> ClusterQueue pretraining" in text
    assert "gpus:      1 on h100-80gb" in text
    assert "tiny-node-0-0-x7k2p  Running  ready 1/1  restarts 1  node gra11-h100-0" in text


def test_status_of_a_preempted_job_should_show_its_history():
    text = jobs.describe(FakeCluster(workloads()), "applied", "mistral-ft-7")
    assert "state:     Preempted: preempted:" in text
    assert "history:   requeued 0 time(s); evictions: Preempted x1" in text
    assert "pods:      none" in text


def test_status_of_a_served_model_should_show_the_deployment():
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "tiny", "namespace": "serving", "labels": {"infratech.io/job": "tiny"}},
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    text = jobs.describe(FakeCluster([deployment, pod("tiny-6d5f-abcde", "tiny", "serving", waiting="ContainerCreating", ready=False)]), "serving", "tiny")
    assert "tiny: Deployment, 1/2 replicas ready" in text
    assert "tiny-6d5f-abcde  ContainerCreating  ready 0/1" in text


def test_status_of_an_unknown_job_should_say_so():
    assert jobs.describe(FakeCluster(workloads()), "pretraining", "nope") == "no job 'nope' in namespace pretraining (no Kueue Workload, no Deployment)"


def test_logs_should_print_every_pod_in_rank_order():
    cluster = FakeCluster(
        [pod("run-node-0-1-bbbbb", "run"), pod("run-node-0-0-aaaaa", "run")],
        logs={"run-node-0-0-aaaaa": "step 1\nstep 2\nstep 3\n", "run-node-0-1-bbbbb": "rank 1\n"},
    )
    assert jobs.logs(cluster, "pretraining", "run", tail=2) == "==> run-node-0-0-aaaaa <==\nstep 2\nstep 3\n==> run-node-0-1-bbbbb <==\nrank 1"
    assert "no pod of job 'other'" in jobs.logs(cluster, "pretraining", "other")


def test_cancel_should_delete_what_the_submission_created_and_nothing_else():
    def obj(api, kind, name, instance):
        return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "pretraining", "labels": {"app.kubernetes.io/instance": instance}}}

    cluster = FakeCluster(
        [obj("trainer.kubeflow.org/v1alpha1", "TrainJob", "tiny", "tiny"), obj("v1", "ConfigMap", "tiny-gate", "tiny"), obj("batch/v1", "Job", "other", "other")],
        served={"TrainJob", "Job", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"},  # no KEDA, no monitoring
        forbidden={"Deployment", "PodDisruptionBudget", "NetworkPolicy"},  # the team-member role cannot list these
    )
    assert jobs.cancel(cluster, "pretraining", "tiny") == ["TrainJob/tiny", "ConfigMap/tiny-gate"]
    assert [o["metadata"]["name"] for o in cluster.objects] == ["other"]
