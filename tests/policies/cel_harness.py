"""Evaluating a ValidatingAdmissionPolicy's CEL the way the API server does, with cel-python.

For an object: every matchCondition must be true for the policy to apply; then ``variables`` are
computed in order (each may use the ones before it as ``variables.<name>``) and every validation
must be true for the object to be admitted. Kubernetes' own CEL libraries (quantity, URL, IP) are
not used by our policies, so standard CEL is enough to evaluate them faithfully.
"""

from __future__ import annotations

from dataclasses import dataclass

import celpy


@dataclass(frozen=True)
class Decision:
    applies: bool
    denied_by: tuple[str, ...]  # messages of the validations that failed

    @property
    def admitted(self) -> bool:
        return not self.applies or not self.denied_by


_ENV = celpy.Environment()


def _eval(expression: str, activation: dict):
    program = _ENV.program(_ENV.compile(expression))
    return program.evaluate(activation)


# kind -> (API group, resource), for matching an object against matchConstraints.resourceRules
RESOURCES = {
    "Pod": ("", "pods"),
    "Job": ("batch", "jobs"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "JobSet": ("jobset.x-k8s.io", "jobsets"),
    "TrainJob": ("trainer.kubeflow.org", "trainjobs"),
}


def matches(policy: dict, obj: dict, operation: str = "CREATE", subresource: str = "") -> bool:
    """Whether a request (``operation`` on ``obj``'s resource, or on its ``subresource``: an UPDATE of
    ``pods/ephemeralcontainers`` adds an ephemeral container) is in the policy's resourceRules. A rule
    naming ``pods`` does not match ``pods/ephemeralcontainers`` (admissionregistration/v1 RuleWithOperations)."""
    group, resource = RESOURCES[obj["kind"]]
    wanted = f"{resource}/{subresource}" if subresource else resource
    return any(
        group in rule["apiGroups"] and (wanted in rule["resources"] or "*" in rule["resources"])
        and (operation in rule["operations"] or "*" in rule["operations"])
        for rule in policy["spec"]["matchConstraints"]["resourceRules"]
    )


def decide(policy: dict, obj: dict, operation: str = "CREATE", subresource: str = "") -> Decision:
    """Whether the API server would admit ``obj`` (on CREATE, or the given operation and subresource)
    under ``policy``. An expression that fails to evaluate denies, as ``failurePolicy: Fail`` does."""
    spec = policy["spec"]
    if not matches(policy, obj, operation, subresource):
        return Decision(applies=False, denied_by=())
    activation = {"object": celpy.json_to_cel(obj)}
    for cond in spec.get("matchConditions", []):
        if not bool(_eval(cond["expression"], activation)):
            return Decision(applies=False, denied_by=())
    variables = {}
    for var in spec.get("variables", []):
        activation["variables"] = celpy.json_to_cel({}) if not variables else celpy.celtypes.MapType(variables)
        variables[celpy.celtypes.StringType(var["name"])] = _eval(var["expression"], activation)
    if variables:
        activation["variables"] = celpy.celtypes.MapType(variables)
    denied = []
    for rule in spec["validations"]:
        try:
            result = _eval(rule["expression"], activation)
        except Exception as exc:  # noqa: BLE001 - an evaluation error is a denial under failurePolicy Fail
            result = exc
        if isinstance(result, Exception) or not bool(result):
            denied.append(rule.get("message", rule["expression"]))
    return Decision(applies=True, denied_by=tuple(denied))
