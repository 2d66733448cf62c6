"""A small evaluator of the S3 policy statements the platform writes, so tests decide a request
by what the policy document *does*, not by how it reads.

It follows AWS IAM's evaluation logic for one identity-based policy (IAM User Guide, "Policy
evaluation logic": a request is implicitly denied; an explicit Deny in any statement wins; else
an Allow that matches grants). Matching: ``Action`` case-insensitively, ``Resource`` (an ARN)
case-sensitively; ``*`` matches any run of characters, ``/`` included, and ``?`` one character
(IAM User Guide, "IAM JSON policy elements: Resource" and "Action"). Elements the platform never
writes (NotAction, NotResource, Condition) are refused rather than ignored, so a document that
uses them cannot pass a test by being misread. A resource policy's ``Principal`` (Scaleway's
``{"SCW": "application_id:<id>"}``) limits a statement to the principals it names, exactly
matched; such statements need the caller's ``principal``.
"""

from __future__ import annotations

import json
import re
from typing import Union

SUPPORTED = {"Sid", "Effect", "Action", "Resource", "Principal"}


def _pattern(glob: str, flags: int = 0) -> re.Pattern:
    parts = ((".*" if c == "*" else "." if c == "?" else re.escape(c)) for c in glob)
    return re.compile("".join(parts) + r"\Z", flags | re.DOTALL)


def _matches(patterns: Union[str, list[str]], value: str, ignore_case: bool) -> bool:
    items = [patterns] if isinstance(patterns, str) else patterns
    return any(_pattern(p, re.IGNORECASE if ignore_case else 0).match(value) for p in items)


def _names(principal: dict) -> list[str]:
    (values,) = principal.values()  # {"SCW": ...}: one provider key
    return [values] if isinstance(values, str) else list(values)


def decide(policy: Union[str, dict], action: str, resource: str, principal: str | None = None) -> str:
    """"Allow", "ExplicitDeny" or "ImplicitDeny" for one request."""
    doc = json.loads(policy) if isinstance(policy, str) else policy
    allowed = False
    for statement in doc["Statement"]:
        unknown = set(statement) - SUPPORTED
        if unknown:
            raise ValueError(f"statement uses {sorted(unknown)}: not evaluated here")
        if statement["Effect"] not in ("Allow", "Deny"):
            raise ValueError(f"Effect {statement['Effect']!r}")
        if "Principal" in statement:
            if principal is None:
                raise ValueError("a resource policy: say who asks")
            if principal not in _names(statement["Principal"]):
                continue
        if not (_matches(statement["Action"], action, True) and _matches(statement["Resource"], resource, False)):
            continue
        if statement["Effect"] == "Deny":
            return "ExplicitDeny"
        allowed = True
    return "Allow" if allowed else "ImplicitDeny"


def allows(policy: Union[str, dict], action: str, bucket: str, key: str | None = None) -> bool:
    arn = f"arn:aws:s3:::{bucket}" if key is None else f"arn:aws:s3:::{bucket}/{key}"
    return decide(policy, action, arn) == "Allow"
