"""The rules as Pulumi CrossGuard policies (``policies/sovereignty`` builds its pack from these).

Each rule becomes a ResourceValidationPolicy or StackValidationPolicy named by its id, with the
rule's default level and a config schema for the settings it reads. The validations call the same
functions as ``infratech plan``. Policy packs see secret values unwrapped and no stack outputs:
rules that need those (``pack_limitation``) report themselves not applicable here and are judged
by the offline plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi_policy as pp

from .model import Resource, Stack
from .packconfig import settings_from
from .rules import RULES

LEVELS = {"advisory": pp.EnforcementLevel.ADVISORY, "mandatory": pp.EnforcementLevel.MANDATORY, "disabled": pp.EnforcementLevel.DISABLED}
CONFIG_SCHEMA = pp.PolicyConfigSchema(
    properties={
        "area": {"type": "string", "enum": ["france", "eu"]},
        "allowed_providers": {"type": "array", "items": {"type": "string"}},
        "secnumcloud_only": {"type": "boolean"},
        "required_labels": {"type": "array", "items": {"type": "string"}},
    }
)


def _plain(value: Any) -> Any:
    """The pack's secrets-preserving proxies as plain dicts and lists (unknowns stay None)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(value[k]) for k in value}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value


def _resource(res: Any) -> Resource:
    # a stack policy's PolicyResource lists its dependencies (pulumi_policy PolicyResource.dependencies);
    # a resource policy's arguments do not
    deps = tuple(d.urn for d in getattr(res, "dependencies", None) or ())
    return Resource(type=res.resource_type, name=res.name, urn=res.urn, props=_plain(res.props), dependencies=deps)


def _resource_policy(rule):
    def validate(args: pp.ResourceValidationArgs, report_violation) -> None:
        if rule.pack_limitation:
            args.not_applicable(rule.pack_limitation)
        for message in rule.check(_resource(args), settings_from(args.get_config())):
            report_violation(message, None)

    return pp.ResourceValidationPolicy(
        name=rule.id, description=rule.description, validate=validate, enforcement_level=LEVELS[rule.default_level],
        config_schema=CONFIG_SCHEMA, remediation_steps=rule.remediation,
    )


def _stack_policy(rule):
    def validate(args: pp.StackValidationArgs, report_violation) -> None:
        if rule.pack_limitation:
            args.not_applicable(rule.pack_limitation)
        settings = settings_from(args.get_config())
        if rule.active is not None and not rule.active(settings):
            args.not_applicable("turned off by the stack's settings")
        resources = [r for r in args.resources if r.resource_type != "pulumi:pulumi:Stack"]
        stack = Stack(resources=tuple(_resource(r) for r in resources), outputs={}, settings=settings)
        for message in rule.check(stack):
            report_violation(message, None)

    return pp.StackValidationPolicy(
        name=rule.id, description=rule.description, validate=validate, enforcement_level=LEVELS[rule.default_level],
        config_schema=CONFIG_SCHEMA, remediation_steps=rule.remediation,
    )


def policies() -> list:
    return [_resource_policy(r) if r.scope == "resource" else _stack_policy(r) for r in RULES]
