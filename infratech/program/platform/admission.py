"""Admission policies in the team namespaces (and the serving namespace), from ``infratech/policy/kubernetes``.

Jobs name their Kueue queue; GPUs are requested whole and with the GPU toleration, and reach a team
pod through that request only (no toleration without it, no runtime class, no NVIDIA_* variable); no
system priority class in team pods; images come from the allowed registries, pinned; no privileged
pods, host namespaces or ports, hostPath, added capabilities, root or unconfined seccomp outside the
system namespaces; every workload carries a data-classification label. docs/sovereignty.md says why.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from ...config import StackConfig
from ...mirror.refs import mirror_ref
from ...policy.admission import documents
from .base import MANAGED_BY, child_opts


class Admission(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, provider, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:platform:Admission", name, None, opts)
        policies: dict[str, pulumi.Resource] = {}
        allowed = cfg.policy.allowed_registries
        if cfg.mirror:  # team pods pull the mirror's copies of the allowed registries, nothing else
            allowed = tuple(dict.fromkeys(mirror_ref(p, cfg.mirror.registry, cfg.mirror.prefix) for p in allowed))
        for doc in documents(allowed):
            meta = {**doc["metadata"], "labels": {**MANAGED_BY, **doc["metadata"].get("labels", {})}}
            if doc["kind"] == "ValidatingAdmissionPolicy":
                policies[meta["name"]] = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                    f"vap-{meta['name']}", metadata=meta, spec=doc["spec"], opts=child_opts(self, provider)
                )
            else:
                k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                    f"vapb-{meta['name']}",
                    metadata=meta,
                    spec=doc["spec"],
                    opts=child_opts(self, provider, depends_on=[policies[doc["spec"]["policyName"]]]),
                )
        self.register_outputs({"policies": sorted(policies)})
