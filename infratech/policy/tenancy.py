"""The rule that team namespaces keep their guardrails (``platform.tenancy``): without them a team
reaches every other team through the network, the scheduler and the API. Judged on the resources
declared, so the plan and the Pulumi policy pack see the same thing, whatever switch removed them."""

from __future__ import annotations

from .admission import TEAM_LABEL, documents
from .model import Resource, Stack

NAMESPACE = "kubernetes:core/v1:Namespace"
QUOTA = "kubernetes:core/v1:ResourceQuota"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
VAP = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
VAP_BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
ENFORCE = "pod-security.kubernetes.io/enforce"


def _in(stack: Stack, type_: str) -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for res in stack.of_type(type_):
        out.setdefault(res.get("metadata.namespace"), []).append(res)
    return out


def _default_deny(policy: Resource) -> bool:
    """Selects every pod, for both directions, and allows nothing (the pods then take only what
    another policy allows)."""
    spec = policy.props.get("spec") or {}
    selector = spec.get("podSelector") or {}
    return (not selector.get("matchLabels") and not selector.get("matchExpressions")
            and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or ())
            and not spec.get("ingress") and not spec.get("egress"))


def team_guardrails(stack: Stack) -> list[str]:
    teams = [ns for ns in stack.of_type(NAMESPACE) if TEAM_LABEL in (ns.get("metadata.labels") or {})]
    if not teams:
        return []
    quotas, policies, bindings = _in(stack, QUOTA), _in(stack, NETWORK_POLICY), _in(stack, ROLE_BINDING)
    problems = []
    for ns in teams:
        name, labels = ns.get("metadata.name"), ns.get("metadata.labels") or {}
        missing = []
        if labels.get(ENFORCE) != "restricted":
            missing.append(f"Pod Security restricted (enforce is {labels.get(ENFORCE)!r})")
        if not quotas.get(name):
            missing.append("a ResourceQuota")
        if not any(_default_deny(p) for p in policies.get(name, ())):
            missing.append("a default-deny NetworkPolicy")
        if not bindings.get(name):
            missing.append("the team's RoleBinding")
        if missing:
            problems.append(f"team namespace {name!r} lacks {'; '.join(missing)}")
    declared = {r.get("metadata.name") for r in stack.of_type(VAP)}
    bound = {r.get("spec.policyName") for r in stack.of_type(VAP_BINDING)}
    for policy in (d["metadata"]["name"] for d in documents(()) if d["kind"] == "ValidatingAdmissionPolicy"):
        if policy not in declared or policy not in bound:
            problems.append(f"admission policy {policy} is not {'bound' if policy in declared else 'applied'}: "
                            "nothing in the cluster enforces it in the team namespaces")
    return problems
