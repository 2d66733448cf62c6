"""The objects the controllers under a TrainJob create, built the way their source builds them, so
that the admission policies can be judged on what the API server would really receive.

TrainJob --(Kueue admits)--> TrainJob with Kueue's runtime patch, unsuspended
         --(Trainer)-------> JobSet   --(JobSet)--> Job per replica --(Job controller)--> Pods

Each step cites the code it mirrors. Only what the policies can see is built: metadata (labels,
owner references) and the pod spec; statuses, annotations the policies do not read and the
``PET_*`` variables are left out.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

# kubeflow/trainer v2.3.0: pkg/apis/trainer/v1alpha1 (GroupVersion), constants.AncestorTrainer
TRAINER_API = "trainer.kubeflow.org/v1alpha1"
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
# kubernetes-sigs/jobset v0.12.0: api/jobset/v1alpha2/groupversion_info.go
JOBSET_API = "jobset.x-k8s.io/v1alpha2"
# kubernetes-sigs/kueue v0.19.2: pkg/controller/jobs/trainjob/trainjob_controller.go runtimePatchManagerName
KUEUE_PATCH_MANAGER = "kueue.x-k8s.io/manager"

# Strategic merge keys of the lists in a JobSetSpec (Go struct tags `patchMergeKey`): JobSet v0.12.0
# api/jobset/v1alpha2/jobset_types.go (replicatedJobs by name) and k8s.io/api core/v1 types.go
# (containers, volumes, env, ... ). Lists without a merge key (tolerations, command, args) are
# replaced by the patch, as strategicpatch.StrategicMergePatch does.
MERGE_KEYS = {
    "replicatedJobs": "name",
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}


def strategic_merge(base: Any, patch: Any, key: Optional[str] = None) -> Any:
    """``patch`` merged into ``base``: maps recursively, keyed lists item by item, other lists replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = strategic_merge(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    merge_key = MERGE_KEYS.get(key or "")
    if isinstance(base, list) and isinstance(patch, list) and merge_key:
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            at = next((n for n, i in enumerate(out) if i.get(merge_key) == item.get(merge_key)), None)
            if at is None:
                out.append(copy.deepcopy(item))
            else:
                out[at] = strategic_merge(out[at], item)
        return out
    return copy.deepcopy(patch)


def controller_ref(api_version: str, kind: str, owner: dict) -> dict:
    """metav1.NewControllerRef / controllerutil.SetControllerReference: controller and blockOwnerDeletion set."""
    meta = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta.get("uid", f"uid-{meta['name']}"),
            "controller": True, "blockOwnerDeletion": True}


def kueue_admits(trainjob: dict, node_labels: dict[str, str], tolerations: list[dict]) -> dict:
    """Kueue v0.19.2 TrainJob.RunWithPodSetsInfo: its own runtime patch (manager
    ``kueue.x-k8s.io/manager``) gets, per replicated job, the flavour's node selector and
    tolerations on the pod template; then the TrainJob is unsuspended."""
    admitted = copy.deepcopy(trainjob)
    spec = admitted["spec"]
    names = [p["name"] for p in _runtime_replicated_jobs(spec)] or ["node"]
    patch = {
        "manager": KUEUE_PATCH_MANAGER,
        "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [
            {"name": n, "template": {"spec": {"template": {"spec": {"nodeSelector": dict(node_labels), "tolerations": copy.deepcopy(tolerations)}}}}}
            for n in names
        ]}}},
    }
    spec["runtimePatches"] = [p for p in spec.get("runtimePatches") or [] if p.get("manager") != KUEUE_PATCH_MANAGER] + [patch]
    spec["suspend"] = False
    return admitted


def _runtime_replicated_jobs(spec: dict) -> list[dict]:
    return [rj for p in spec.get("runtimePatches") or [] for rj in ((((p.get("trainingRuntimeSpec") or {}).get("template") or {}).get("spec") or {}).get("replicatedJobs") or [])]


def trainer_jobset(trainjob: dict, runtime_spec: dict) -> dict:
    """The JobSet Trainer v2.3.0 applies for a TrainJob.

    pkg/runtime/core/trainingruntime.go newRuntimeInfo: the JobSet's labels and annotations are the
    runtime's ``template.metadata`` plus each runtime patch's ``trainingRuntimeSpec.template.metadata``
    (never the TrainJob's own labels); mergeRuntimePatches: each patch's ``template.spec`` is
    strategic-merged into the runtime's JobSetSpec, in order. The trainer-ancestor replicated job
    gets ``numNodes`` pods (the torch plugin sets the PodSet count, jobset.go copies it to
    parallelism and completions) and its ``node`` container the TrainJob's
    image, command, env and resourcesPerNode. pkg/runtime/framework/plugins/jobset/jobset.go Build:
    suspend follows the TrainJob; the owner reference is the TrainJob (controller)."""
    spec = trainjob["spec"]
    template = runtime_spec["template"]
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    annotations = dict((template.get("metadata") or {}).get("annotations") or {})
    js_spec = copy.deepcopy(template["spec"])
    for patch in spec.get("runtimePatches") or []:
        patch_template = (patch.get("trainingRuntimeSpec") or {}).get("template") or {}
        labels.update((patch_template.get("metadata") or {}).get("labels") or {})
        annotations.update((patch_template.get("metadata") or {}).get("annotations") or {})
        if patch_template.get("spec"):
            js_spec = strategic_merge(js_spec, patch_template["spec"])
    trainer = spec.get("trainer") or {}
    for rjob in js_spec["replicatedJobs"]:
        rj_labels = (rjob["template"].get("metadata") or {}).get("labels") or {}
        if rj_labels.get(ANCESTOR_LABEL) != "trainer":
            continue
        nodes = int(trainer.get("numNodes", (runtime_spec.get("mlPolicy") or {}).get("numNodes", 1)))
        rjob["template"]["spec"]["parallelism"] = rjob["template"]["spec"]["completions"] = nodes
        for container in rjob["template"]["spec"]["template"]["spec"]["containers"]:
            if container["name"] != "node":
                continue
            for key in ("image", "command", "args"):
                if key in trainer:
                    container[key] = copy.deepcopy(trainer[key])
            container["env"] = strategic_merge(container.get("env") or [], trainer.get("env") or [], "env")
            if "resourcesPerNode" in trainer:
                container["resources"] = strategic_merge(container.get("resources") or {}, trainer["resourcesPerNode"])
    meta = trainjob["metadata"]
    return {
        "apiVersion": JOBSET_API,
        "kind": "JobSet",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels, "annotations": annotations,
                     "uid": f"uid-jobset-{meta['name']}", "ownerReferences": [controller_ref(TRAINER_API, "TrainJob", trainjob)]},
        "spec": {**js_spec, "suspend": bool(spec.get("suspend", False))},
    }


def jobset_jobs(jobset: dict) -> list[dict]:
    """The Jobs JobSet v0.12.0 creates (pkg/controllers/jobset_controller.go constructJob): labels
    and annotations are the replicated job's template metadata only, then labelAndAnnotateObject
    adds the jobset.sigs.k8s.io/* keys to the Job and to its pod template; the owner reference is
    the JobSet (ctrl.SetControllerReference in createJobs)."""
    jobs = []
    name, ns = jobset["metadata"]["name"], jobset["metadata"]["namespace"]
    for rjob in jobset["spec"]["replicatedJobs"]:
        replicas = int(rjob.get("replicas", 1))
        for index in range(replicas):
            job_name = f"{name}-{rjob['name']}-{index}"  # placement.GenJobName
            jobset_labels = {
                "jobset.sigs.k8s.io/jobset-name": name,
                "jobset.sigs.k8s.io/jobset-uid": jobset["metadata"]["uid"],
                "jobset.sigs.k8s.io/replicatedjob-name": rjob["name"],
                "jobset.sigs.k8s.io/restart-attempt": "0",
                "jobset.sigs.k8s.io/replicatedjob-replicas": str(replicas),
                "jobset.sigs.k8s.io/job-index": str(index),
                "jobset.sigs.k8s.io/group-name": rjob.get("groupName", "default"),
            }
            job_spec = copy.deepcopy(rjob["template"]["spec"])
            pod_meta = job_spec["template"].setdefault("metadata", {})
            pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **jobset_labels}
            job_spec["suspend"] = bool(jobset["spec"].get("suspend", False))
            jobs.append({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": job_name, "namespace": ns, "uid": f"uid-job-{job_name}",
                             "labels": {**((rjob["template"].get("metadata") or {}).get("labels") or {}), **jobset_labels},
                             "ownerReferences": [controller_ref(JOBSET_API, "JobSet", jobset)]},
                "spec": job_spec,
            })
    return jobs


def job_pods(job: dict) -> list[dict]:
    """The pods the Job controller creates: kubernetes pkg/controller/controller_utils.go
    GetPodFromTemplate copies the template's labels and spec and appends the controller reference
    (batch/v1 Job); the API server's Job defaulting has added the job-name and controller-uid
    labels to the template. One pod per ``parallelism``."""
    meta = job["metadata"]
    template = job["spec"]["template"]
    labels = {**((template.get("metadata") or {}).get("labels") or {}),
              "batch.kubernetes.io/job-name": meta["name"], "batch.kubernetes.io/controller-uid": meta["uid"],
              "job-name": meta["name"], "controller-uid": meta["uid"]}
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{meta['name']}-{i}", "namespace": meta["namespace"], "labels": dict(labels),
                         "ownerReferences": [controller_ref("batch/v1", "Job", job)]},
            "spec": copy.deepcopy(template["spec"]),
        }
        for i in range(int(job["spec"].get("parallelism", 1)))
    ]


def chain(trainjob: dict, runtime_spec: dict, node_labels: dict[str, str], tolerations: list[dict]) -> dict[str, list[dict]]:
    """Every object an admitted TrainJob leads to, by kind."""
    admitted = kueue_admits(trainjob, node_labels, tolerations)
    jobset = trainer_jobset(admitted, runtime_spec)
    jobs = jobset_jobs(jobset)
    return {"TrainJob": [admitted], "JobSet": [jobset], "Job": jobs, "Pod": [p for j in jobs for p in job_pods(j)]}
