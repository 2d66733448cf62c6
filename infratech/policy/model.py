"""What a policy rule sees and says, the same for the offline plan and the Pulumi policy pack.

A rule looks at resources as plain data: type, name, urn and input properties, where a value
known only after creation is ``(computed)`` and a Pulumi secret is ``[secret]`` (the offline
plan's markers; the pack's adapter maps its own view onto them). Unknown values never count as a
violation: a rule judges what it can see and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Optional

COMPUTED = "(computed)"
SECRET = "[secret]"
Level = Literal["advisory", "mandatory", "disabled"]
LEVELS = ("advisory", "mandatory", "disabled")


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    urn: str
    props: dict[str, Any]
    # the urns this resource depends on (what ties an allow-list to the cluster it restricts: a
    # resource's id is unknown until creation, so the dependency is what both the plan and the pack see)
    dependencies: tuple[str, ...] = ()

    @property
    def package(self) -> str:
        return self.type.split(":", 1)[0]

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]

    def get(self, dotted: str, default: Any = None) -> Any:
        value: Any = self.props
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                return default
            value = value[part]
        return value

    def label(self) -> str:
        return f"{self.type} {self.name!r}"


@dataclass(frozen=True)
class Settings:
    """A stack's policy settings (``infratech:policy``), with the defaults of a French stack."""

    area: Literal["france", "eu"] = "france"
    allowed_providers: tuple[str, ...] = ("ovh", "scaleway", "outscale", "existing", "baremetal")
    secnumcloud_only: bool = False
    required_labels: tuple[str, ...] = ("owner", "team", "cost-centre")
    levels: dict[str, str] = field(default_factory=dict)
    exceptions: dict[str, str] = field(default_factory=dict)
    # with ``mirror:`` set, ``registry/prefix/``: every image must come from there (images-from-mirror)
    mirror: Optional[str] = None


@dataclass(frozen=True)
class Stack:
    """Everything a stack-level rule sees: all resources, the stack outputs, the settings."""

    resources: tuple[Resource, ...]
    outputs: dict[str, Any]
    settings: Settings

    def of_type(self, *types: str) -> Iterator[Resource]:
        return (r for r in self.resources if r.type in types)


Check = Callable[..., list[str]]


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    remediation: str
    source: str
    scope: Literal["resource", "stack"]
    check: Check  # resource rules: (Resource, Settings) -> messages; stack rules: (Stack) -> messages
    default_level: Level = "mandatory"
    # why the pack cannot judge it (secretness is invisible to policy packs); None: it can
    pack_limitation: Optional[str] = None
    # a rule a stack turns on (secnumcloud_only): off, it is reported as such, never as passed
    active: Optional[Callable[["Settings"], bool]] = None


@dataclass(frozen=True)
class Verdict:
    rule: Rule
    level: str
    violations: tuple[str, ...]
    exception: Optional[str] = None
    inactive: bool = False

    @property
    def status(self) -> str:
        if self.level == "disabled":
            return "disabled"
        if self.inactive:
            return "off"
        if not self.violations:
            return "pass"
        if self.exception is not None:
            return "excepted"
        return "FAIL" if self.level == "mandatory" else "warn"

    @property
    def blocks(self) -> bool:
        return self.status == "FAIL"


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a property as (dotted path with [i] for list items, value)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")
    else:
        yield path, value
