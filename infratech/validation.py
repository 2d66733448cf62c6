"""Validation errors in the words of someone writing YAML: one formatter for every file a user
writes (stack files, job files). Each problem has its key path, what is wrong and, where it is
safe to show, the value given."""

from __future__ import annotations

import json
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, ValidationError


MISSING = object()  # no value to show: a key left out, a whole mapping, a value too long to echo


class Problem(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    message: str
    given: Any = MISSING

    def line(self) -> str:
        """``path: message``, with the value given where there is one to show."""
        given = "" if self.given is MISSING else f" (given: {json.dumps(self.given, default=str)})"
        return f"{self.path}: {self.message}{given}"



# pydantic's words for YAML shapes
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

# the members of a union, named as a YAML value: a value matching none gets one line naming each
_UNION_MEMBERS = {"str": "a string", "int": "a whole number", "float": "a number", "bool": "true or false"}

_GIVEN_LIMIT = 120  # characters of a JSON-encoded value worth echoing back


def key_path(loc: tuple, root: str = "(file)") -> str:
    """A pydantic error location as a YAML key path: ``pools[1].flavor``; ``root`` for the file."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or root


def fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The fields a model allows where ``loc`` points (list indexes skipped), in the order the model
    declares them, for an unknown key's message; [] where ``loc`` leaves the models."""
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


def problems(exc: ValidationError, model: type[BaseModel], *, root: str = "(file)",
             secret_keys: Iterable[str] = (), mask: Any = "[secret]") -> list[Problem]:
    """Every problem of ``exc``, raised validating ``model``. A value under a top-level key in
    ``secret_keys`` is shown as ``mask``, never echoed, not even a wrongly given one."""
    secret_keys = frozenset(secret_keys)
    errors = exc.errors(include_url=False)
    out: list = []  # problems, and for a union the tuple of its location until its line is made below
    unions: dict[tuple, list[str]] = {}
    for err in errors:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "union["))))
        kind = err["type"]
        if kind == "too_short" and any(len(e["loc"]) > len(err["loc"]) and e["loc"][: len(err["loc"])] == err["loc"] for e in errors):
            continue  # the list is short only because its items failed, which are reported themselves
        if len(loc) > 1 and loc[-1] in _UNION_MEMBERS and kind.endswith(("_type", "_parsing")):
            if loc[:-1] not in unions:
                unions[loc[:-1]] = []
                out.append(loc[:-1])  # placeholder, filled below
            unions[loc[:-1]].append(_UNION_MEMBERS[loc[-1]])
            continue
        message = err["msg"].removeprefix("Value error, ")
        given = err.get("input", MISSING)
        if kind == "missing":
            given, message = MISSING, "is required"
        elif message.startswith("is required") and given is None:
            given = MISSING  # a required key left out, checked through its default
        elif kind == "extra_forbidden":
            allowed = fields_at(model, loc)
            message = "is not a known key" + ("; allowed: " + ", ".join(allowed) if allowed else "")
        elif kind == "literal_error":
            message = f"must be one of {err.get('ctx', {}).get('expected', '')}"
        elif kind in PLAIN_WORDS:
            message = PLAIN_WORDS[kind]
        elif isinstance(given, dict):
            given = MISSING  # a whole-object error: the message names the fields
        if isinstance(given, (dict, list, tuple)) and len(json.dumps(given, default=str)) > _GIVEN_LIMIT:
            given = MISSING
        if loc and loc[0] in secret_keys and given is not MISSING:
            given = mask
        out.append(Problem(path=key_path(loc, root), message=message, given=given))
    for loc, members in unions.items():
        words = ", ".join(members[:-1]) + f" or {members[-1]}" if len(members) > 1 else members[0]
        out[out.index(loc)] = Problem(path=key_path(loc, root), message=f"must be {words}", given=MISSING)
    return out
