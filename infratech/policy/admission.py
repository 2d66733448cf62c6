"""The Kubernetes admission policies of ``infratech/policy/kubernetes/``: ValidatingAdmissionPolicies
(CEL, in the API server since Kubernetes 1.30, no webhook to run) and their bindings.

The files are the source; ``documents`` reads them and writes the stack's allowed registries where
``ALLOWED_REGISTRIES`` stands, as a CEL list. The platform applies the result; the tests evaluate
the same CEL with a CEL interpreter.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import yaml

# package data (pyproject.toml), so an installed, non-editable package finds them too
POLICY_DIR = Path(str(resources.files(__package__).joinpath("kubernetes")))
PLACEHOLDER = "ALLOWED_REGISTRIES"
WORKLOADS_LABEL = "infratech.io/workloads"  # namespaces where workloads run: teams and serving
TEAM_LABEL = "infratech.io/team"  # a team's namespace, by the team's name


def cel_list(values) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values).replace('"', "'") + "]"


def documents(allowed_registries, policy_dir: Path = POLICY_DIR) -> list[dict]:
    """Every policy and binding, in file order, with the registries written in."""
    files = sorted(policy_dir.glob("*.yaml"))
    if not files:
        raise FileNotFoundError(f"no admission policies in {policy_dir}: the package is missing its data (infratech/policy/kubernetes)")
    docs = []
    for path in files:
        text = path.read_text(encoding="utf-8").replace(PLACEHOLDER, cel_list(allowed_registries))
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs
