"""Finding the project and reading stack files the way the Pulumi CLI does, for offline use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from ..config import NAMESPACE, StackConfig, parse, raw_from_config

SECRET_PLACEHOLDER = "(secret)"


class StackFileError(Exception):
    """A stack that cannot be read: unknown name, unreadable YAML, wrong shape."""


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    stack_dir: Path
    main: Path

    def stacks(self) -> list[str]:
        return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in self.stack_dir.glob("Pulumi.*.yaml"))

    def stack_file(self, stack: str) -> Path:
        return self.stack_dir / f"Pulumi.{stack}.yaml"


def find_project(start: Optional[Path] = None) -> Project:
    """The nearest directory holding ``Pulumi.yaml``, from ``start`` (default: cwd) upwards,
    falling back to the checkout this package was imported from."""
    here = (start or Path.cwd()).resolve()
    candidates = [here, *here.parents, Path(__file__).resolve().parents[2]]  # infratech/cli/ -> the checkout
    for directory in candidates:
        if (directory / "Pulumi.yaml").is_file():
            return _read_project(directory)
    raise StackFileError(f"no Pulumi.yaml found in {here} or its parents")


def _read_project(root: Path) -> Project:
    data = yaml.safe_load((root / "Pulumi.yaml").read_text(encoding="utf-8"))
    return Project(
        root=root,
        name=data["name"],
        stack_dir=root / data.get("stackConfigDir", "."),
        main=root / data.get("main", ".") / "__main__.py",
    )


def read_stack_config(project: Project, stack: str) -> tuple[dict[str, str], list[str]]:
    """The stack's config as Pulumi hands it to a program: fully qualified keys, string values
    (structured values as JSON), and the list of secret keys.

    Encrypted values (``secure: v1:…``) cannot be decrypted offline; they are passed as a
    placeholder and marked secret, so the plan shows where a secret goes without knowing it.
    """
    path = project.stack_file(stack)
    if not path.is_file():
        known = ", ".join(project.stacks()) or "none"
        raise StackFileError(f"unknown stack {stack!r}: {path} does not exist; stacks: {known}")
    return read_config_file(path, project.name)


def read_config_file(path: Path, project_name: str) -> tuple[dict[str, str], list[str]]:
    """One stack file's ``config:`` as Pulumi hands it over (see :func:`read_stack_config`)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise StackFileError(f"{path}: expected a mapping with a 'config:' mapping")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (data.get("config") or {}).items():
        full = key if ":" in key else f"{project_name}:{key}"
        if value is None:
            continue  # `key:` left empty is unset, as for the Pulumi CLI
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = SECRET_PLACEHOLDER
            secret_keys.append(full)
        elif isinstance(value, str):
            config[full] = value
        else:
            config[full] = json.dumps(value)
    return config, secret_keys


def stack_config(project: Project, stack: str) -> StackConfig:
    """The stack file read as the program reads it, validated (StackConfigError names problems)."""
    raw, secret_keys = read_stack_config(project, stack)
    prefix = NAMESPACE + ":"
    return parse(raw_from_config(raw), stack, [k[len(prefix):] for k in secret_keys if k.startswith(prefix)])
