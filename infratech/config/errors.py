"""Problems of a stack's configuration, each with its key path, the value given and what is
allowed, in the words of someone writing YAML."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict, ValidationError

from ..policy.model import SECRET
from .common import SECRET_KEYS
from .stack import StackConfig

class Problem(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    message: str
    given: Any = None


class StackConfigError(pulumi.RunError):
    """Every problem of a stack's configuration. A clean, traceback-free failure under Pulumi."""

    def __init__(self, stack: str, problems: list[Problem]):
        self.stack = stack
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        lines = [f"stack {self.stack!r}: {n} configuration problem{'s' if n != 1 else ''}"]
        for p in self.problems:
            given = "" if p.given is _MISSING else f" (given: {json.dumps(p.given, default=str)})"
            lines.append(f"  {p.path}: {p.message}{given}")
        return "\n".join(lines)


_MISSING = object()

# pydantic's words for YAML shapes, in the words of someone writing YAML
PLAIN_WORDS = {
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
}


def key_path(loc: tuple, root: str = "(stack)") -> str:
    """A pydantic error location as a YAML key path: ``pools[1].flavor``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or root


def _problems(exc: ValidationError) -> list[Problem]:
    problems = []
    errors = exc.errors(include_url=False)
    for err in errors:
        if err["type"] == "too_short" and any(len(e["loc"]) > len(err["loc"]) and e["loc"][: len(err["loc"])] == err["loc"] for e in errors):
            continue  # the list is short only because its items failed, which are reported themselves
        msg = err["msg"].removeprefix("Value error, ")
        loc = tuple(err["loc"])
        given = err.get("input", _MISSING)
        if err["type"] == "missing":
            given = _MISSING
            msg = "is required"
        elif msg.startswith("is required") and given is None:
            given = _MISSING  # a required key left out, checked through its default
        elif err["type"] == "extra_forbidden":
            msg = "is not a known key" + _known_keys_hint(loc)
        elif err["type"] in PLAIN_WORDS:
            msg = PLAIN_WORDS[err["type"]]
        elif isinstance(given, dict):
            given = _MISSING  # a whole-object error: the message names the fields
        if isinstance(given, (dict, list, tuple)) and len(json.dumps(given, default=str)) > 120:
            given = _MISSING
        if loc and loc[0] in SECRET_KEYS and given is not _MISSING:
            given = SECRET  # a credential is never echoed back, not even a wrongly given one
        problems.append(Problem(path=key_path(loc), message=msg, given=given))
    return problems


def fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The fields a model allows where ``loc`` points (list indexes skipped), for an unknown key's
    message; [] where ``loc`` leaves the models. Stack files and job files both use it."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        candidates = [a for a in (ann, *(getattr(ann, "__args__", ()) or ())) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        current = candidates[0]
    return list(getattr(current, "model_fields", {}))


def _known_keys_hint(loc: tuple) -> str:
    allowed = fields_at(StackConfig, loc)
    return "; allowed: " + ", ".join(allowed) if allowed else ""
