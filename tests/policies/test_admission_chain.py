"""A training run end to end through the admission policies: the TrainJob the llm-train chart
renders, admitted by Kueue, then the JobSet Trainer v2.3 makes of it, the Jobs JobSet v0.12 makes
of that and the pods of those Jobs (built as those controllers build them: controllers.py). Each
object must be admitted by every policy, or the run never starts."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
from cel_harness import decide
from controllers import JOBSET_API, TRAINER_API, chain, controller_ref

from infratech.program.platform.kueue import flavor_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "charts"))
from chart_harness import CHARTS_DIR, REGISTRIES, denials, one, rendered, runtime_spec_from  # noqa: E402

from infratech.policy.admission import documents  # noqa: E402

POLICIES = {d["metadata"]["name"]: d for d in documents(REGISTRIES) if d["kind"] == "ValidatingAdmissionPolicy"}
LABEL_POLICIES = ("infratech-queue-name", "infratech-data-classification")
MULTI = CHARTS_DIR / "llm-train" / "ci" / "02-multi-node-values.yaml"
QUEUE, CLASSIFICATION = "kueue.x-k8s.io/queue-name", "infratech.io/data-classification"


@pytest.fixture(scope="module")
def runtime(default_plan):
    return runtime_spec_from(default_plan)


def run_chain(trainjob: dict, runtime: dict) -> dict[str, list[dict]]:
    flavor = flavor_spec("h100-80gb")
    return chain(trainjob, runtime, flavor["nodeLabels"], flavor["tolerations"])


def chart_trainjob() -> dict:
    return one(rendered("llm-train", MULTI), "TrainJob")


def test_should_admit_every_object_of_a_chart_run_at_every_level(runtime):
    objects = run_chain(chart_trainjob(), runtime)
    assert [len(objects[k]) for k in ("TrainJob", "JobSet", "Job", "Pod")] == [1, 1, 1, 4]
    refused = {f"{kind}/{o['metadata']['name']}": denials(o) for kind, objs in objects.items() for o in objs if denials(o)}
    assert refused == {}


def test_should_label_the_jobset_the_jobs_and_the_pods_with_queue_and_classification(runtime):
    """Labels at every level, not only the exemption: what Kueue's and the cost dashboards select on,
    and what still passes if an owner reference is ever not recognised (an API version bump)."""
    objects = run_chain(chart_trainjob(), runtime)
    for kind in ("JobSet", "Job", "Pod"):
        for obj in objects[kind]:
            labels = obj["metadata"]["labels"]
            assert (labels.get(QUEUE), labels.get(CLASSIFICATION)) == ("pretraining", "confidential"), f"{kind} {obj['metadata']['name']}"


def test_should_admit_a_trainjob_labelled_only_at_the_top(runtime):
    """A TrainJob from another client (the Kubeflow SDK sets no runtime patches): Trainer gives its
    JobSet none of the TrainJob's labels, JobSet gives its Jobs none of the JobSet's; they are
    judged through their owner."""
    trainjob = chart_trainjob()
    trainjob["spec"].pop("runtimePatches")
    objects = run_chain(trainjob, runtime)
    assert QUEUE not in objects["JobSet"][0]["metadata"]["labels"], "Trainer v2.3 does not copy the TrainJob's labels"
    for kind in ("TrainJob", "JobSet", "Job", "Pod"):
        for obj in objects[kind]:
            for name in LABEL_POLICIES:
                decision = decide(POLICIES[name], obj)
                assert decision.admitted, f"{name} refuses {kind} {obj['metadata']['name']}: {decision.denied_by}"


def _unlabelled(obj: dict, owner_refs: list[dict]) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"]["labels"] = {}
    obj["metadata"]["ownerReferences"] = owner_refs
    return obj


OWNER = {"metadata": {"name": "x", "uid": "u"}}
FORGED = [
    ("JobSet", "owned by a ConfigMap", [controller_ref("v1", "ConfigMap", OWNER)]),
    ("JobSet", "TrainJob of another API group", [controller_ref("kubeflow.org/v1", "TrainJob", OWNER)]),
    ("JobSet", "TrainJob reference that is not the controller", [{**controller_ref(TRAINER_API, "TrainJob", OWNER), "controller": False}]),
    ("JobSet", "TrainJob reference without controller", [{k: v for k, v in controller_ref(TRAINER_API, "TrainJob", OWNER).items() if k != "controller"}]),
    ("Job", "owned by a TrainJob (not what makes Jobs)", [controller_ref(TRAINER_API, "TrainJob", OWNER)]),
    ("Job", "JobSet of another version", [controller_ref("jobset.x-k8s.io/v1", "JobSet", OWNER)]),
    ("Pod", "owned by a JobSet (JobSet makes Jobs, not pods)", [controller_ref(JOBSET_API, "JobSet", OWNER)]),
    ("Pod", "owned by a ConfigMap", [controller_ref("v1", "ConfigMap", OWNER)]),
    ("Pod", "Job of the wrong group", [controller_ref("v1", "Job", OWNER)]),
]


@pytest.mark.parametrize("kind,why,refs", FORGED, ids=[f"{k}-{w}" for k, w, _ in FORGED])
@pytest.mark.parametrize("policy", LABEL_POLICIES)
def test_should_judge_on_its_own_labels_an_object_whose_owner_is_not_a_managed_controller(runtime, policy, kind, why, refs):
    objects = run_chain(chart_trainjob(), runtime)
    forged = _unlabelled(objects[kind][0], refs)
    decision = decide(POLICIES[policy], forged)
    assert decision.applies and decision.denied_by, f"{kind} {why}: admitted without labels"


@pytest.mark.parametrize("kind", ["JobSet", "Job", "Pod"])
@pytest.mark.parametrize("policy", LABEL_POLICIES)
def test_should_exempt_exactly_what_the_controllers_make(runtime, policy, kind):
    objects = run_chain(chart_trainjob(), runtime)
    made = _unlabelled(objects[kind][0], objects[kind][0]["metadata"]["ownerReferences"])
    assert not decide(POLICIES[policy], made).applies


def test_both_label_policies_share_one_exemption():
    conditions = {name: POLICIES[name]["spec"]["matchConditions"] for name in LABEL_POLICIES}
    assert conditions["infratech-queue-name"] == conditions["infratech-data-classification"]
