"""Check what the platform declares against upstream data, offline.

The upstream data (default ``values.yaml`` of each chart we pin, the CRDs of the custom resources we
declare) is not ours and is not copied into the project: it is read from the folder named by
``INFRATECH_UPSTREAM``, by default ``<repo>/../shared/reference/upstream``. Where that folder is
absent, the tests that need it skip with the reason given by :func:`require_upstream`.

What is checked here, and how far it goes:

* Helm values (:func:`unknown_value_paths`, :func:`chart_value_problems`): every key we set must
  exist in the chart's default values (a typo such as ``dcgmExporter.enable`` is a silent no-op in
  Helm), with the same shape; cert-manager's ``values.schema.json`` is also applied, as Helm would.
* Custom resources (:func:`validate_custom_object`): the object against its CRD's
  ``openAPIV3Schema``, with the API server's structural-schema rule that unknown fields are not
  accepted. CEL rules (``x-kubernetes-validations``), ``format``, list-type uniqueness
  (``x-kubernetes-list-type``/``-list-map-keys``) and admission webhooks are NOT evaluated.
* Core objects (:func:`validate_core_object`): ``kubernetes-validate`` in strict mode (unknown
  fields rejected) against the Kubernetes OpenAPI schemas the package ships.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import yaml

from infratech.cli.plan.runtime import COMPUTED, SECRET

REPO = Path(__file__).resolve().parents[1]
ENV = "INFRATECH_UPSTREAM"
DEFAULT_KUBERNETES_VERSION = "1.34"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are megabytes: use libyaml when present


# --- where the data is ----------------------------------------------------------------------------


def _configured_dir() -> Path:
    env = os.environ.get(ENV)
    return Path(env) if env else REPO.parent / "shared" / "reference" / "upstream"


def upstream_dir() -> Optional[Path]:
    """The upstream reference folder, or None where it is absent."""
    path = _configured_dir()
    return path if path.is_dir() else None


def skip_reason() -> str:
    return f"upstream reference data not found at {_configured_dir()}; set {ENV}"


def require_upstream() -> Path:
    """The upstream folder; skips the calling test (with the reason why) where it is absent."""
    path = upstream_dir()
    if path is None:
        import pytest

        pytest.skip(skip_reason())
    return path


def _load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


# --- Helm chart values ------------------------------------------------------------------------------

# chart key (also the chart's name at the end of a release's ``chart``) -> chart folder in the data
CHARTS: dict[str, str] = {
    "gpu-operator": "gpu-operator/deployments/gpu-operator",
    "kueue": "kueue/charts/kueue",
    "jobset": "jobset/charts/jobset",
    "kubeflow-trainer": "kubeflow-trainer/charts/kubeflow-trainer",
    "csi-s3": "csi-s3/deploy/helm/csi-s3",
    "kube-prometheus-stack": "kube-prometheus-stack/charts/kube-prometheus-stack",
    "keda": "keda/keda",
    "cert-manager": "cert-manager/deploy/charts/cert-manager",
    "slurm-operator-crds": "slurm-operator-v1.2.1/charts/slurm-operator-crds",
    "slurm-operator": "slurm-operator-v1.2.1/charts/slurm-operator",
    "slurm": "slurm-operator-v1.2.1/charts/slurm",
}

# Maps whose entries the chart merges over a defaults mapping of its own, so each entry is checked
# against those defaults: {chart_key: {"map path": "defaults path"}}. The slurm chart's templates
# merge ``nodesets.<key>`` over ``nodesetDefaults`` (templates/nodeset/nodeset-cr.yaml),
# ``loginsets.<key>`` over ``loginsetDefaults`` (templates/loginset/loginset-cr.yaml); its
# ``partitions`` map documents one entry, ``all``, whose keys are the ones an entry takes
# (values.yaml ``partitions``, read by templates/controller/_helpers.tpl slurm.controller.extraConf).
MAP_ENTRY_DEFAULTS: dict[str, dict[str, str]] = {
    "slurm": {"nodesets": "nodesetDefaults", "loginsets": "loginsetDefaults", "partitions": "partitions.all"},
}

# Keys that upstream documents only in a comment of values.yaml (so they are not in the parsed
# defaults) and that we set on purpose: {chart_key: {"dotted.path": "reason, upstream file:line"}}.
# An entry also allows everything below its path. Add one only after reading the comment upstream.
ALLOWED_UNDECLARED: dict[str, dict[str, str]] = {
    "slurm": {
        "nodesetDefaults.podSpec.nodeSelector": "a map of labels, '(map[string]string) Node label selector', values.yaml:820",
        "loginsetDefaults.service.spec": "a Service spec, '(corev1.ServiceSpec) Extend the service template', values.yaml:675",
        "partitions.all.configMap": "slurm.conf partition options, '(map[string]string | map[string][]string)', values.yaml:859",
    },
}


def _chart_dir(chart_key: str) -> Path:
    if chart_key not in CHARTS:
        raise KeyError(f"no upstream chart data for {chart_key!r}; known: {', '.join(sorted(CHARTS))}")
    return require_upstream() / CHARTS[chart_key]


@functools.lru_cache(maxsize=None)
def _chart_defaults(chart_key: str) -> dict:
    return _load_yaml(_chart_dir(chart_key) / "values.yaml") or {}


def chart_defaults(chart_key: str) -> dict:
    """The chart's default values.yaml (a fresh copy)."""
    return copy.deepcopy(_chart_defaults(chart_key))


@functools.lru_cache(maxsize=None)
def _chart_meta(chart_key: str) -> dict:
    return _load_yaml(_chart_dir(chart_key) / "Chart.yaml") or {}


def chart_version(chart_key: str) -> str:
    """The version of the chart whose data we have: its Chart.yaml ``version``, or where that is a
    placeholder stamped at release (gpu-operator ``v1.0.0-devel``, cert-manager ``v0.0.0``: see the
    data's README) the git tag the files were taken at (``ref:`` in the folder's SOURCE.txt)."""
    version = str(_chart_meta(chart_key).get("version"))
    if version.lstrip("v") in ("0.0.0", "1.0.0-devel") or "devel" in version:
        source = require_upstream() / CHARTS[chart_key].split("/", 1)[0] / "SOURCE.txt"
        for line in source.read_text(encoding="utf-8").splitlines():
            if line.startswith("ref:"):
                return line.split(":", 1)[1].strip()
    return version


def chart_values_schema(chart_key: str) -> Optional[dict]:
    """The chart's values.schema.json, where it ships one (cert-manager)."""
    path = _chart_dir(chart_key) / "values.schema.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def subchart_paths(chart_key: str) -> dict[str, Optional[str]]:
    """Values keys that belong to a dependency (subchart) of the chart: key -> chart key of the
    subchart's own reference data where we have it at the very version the chart depends on, else
    None (its values are not in the data, so keys below it cannot be known)."""
    paths: dict[str, Optional[str]] = {}
    for dep in _chart_meta(chart_key).get("dependencies") or []:
        key = dep.get("alias") or dep["name"]
        sub = dep["name"] if dep["name"] in CHARTS else None
        if sub is not None and str(dep.get("version")).lstrip("v") != chart_version(sub).lstrip("v"):
            sub = None
        paths[key] = sub
    return paths


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return "scalar"


def _deep_merge(base: Any, override: Any) -> Any:
    """Helm's coalescing of user values over defaults: maps merge, a null deletes the key."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = _deep_merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def unknown_value_paths(
    values: Mapping[str, Any],
    defaults: Mapping[str, Any],
    allowed: Iterable[str] = (),
    open_paths: Iterable[str] = (),
) -> list[str]:
    """Every key path we set that the chart's defaults do not have, and every shape clash.

    Rules (a path is the keys joined with dots):

    * mappings are compared key by key, recursively; a key absent from the defaults is reported
      (``dcgmExporter.enable: not in the chart's default values``);
    * a key whose default is None/null, an empty mapping ``{}`` or a list is free-form: charts
      document maps and lists such as ``nodeSelector: {}``, ``podLabels: {}``, ``tolerations: []``
      this way, so anything below it is accepted (list items are never compared);
    * shape clashes are reported: a mapping where the default is a scalar or a list, a scalar or a
      list where the default is a mapping, a mapping or scalar where the default is a list. Scalars
      are not compared with each other (charts take ``"true"``/``1`` and the like), and a null we set
      is accepted on any existing key (in Helm it deletes the default);
    * ``allowed``: paths (with everything below them) accepted although absent from the defaults,
      for keys that upstream documents only in a comment (see :data:`ALLOWED_UNDECLARED`);
    * ``open_paths``: subchart keys whose own defaults we do not have: keys below them that the
      parent's defaults lack are accepted, but a shape clash with a key the parent does declare is
      still reported.
    """
    allowed = tuple(allowed)
    open_paths = tuple(open_paths)
    problems: list[str] = []

    def under(path: str, prefixes: tuple[str, ...]) -> bool:
        return any(path == p or path.startswith(p + ".") for p in prefixes)

    def walk(value: Mapping[str, Any], default: Mapping[str, Any], prefix: str) -> None:
        for key, val in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if under(path, allowed):
                continue
            if key not in default:
                if not under(path, open_paths):
                    problems.append(f"{path}: not in the chart's default values")
                continue
            dflt = default[key]
            if dflt is None or val is None:
                continue
            have, want = _kind(val), _kind(dflt)
            if have != want:
                problems.append(f"{path}: we set a {have} where the chart's default is a {want} ({dflt!r:.60})")
            elif want == "mapping" and dflt:
                walk(val, dflt, path)

    walk(values, defaults, "")
    return problems


def chart_value_problems(chart_key: str, values: Mapping[str, Any]) -> list[str]:
    """Everything wrong with ``values`` for the pinned chart: :func:`unknown_value_paths` against
    its defaults (subcharts taken into account, :data:`ALLOWED_UNDECLARED` applied), then the
    chart's values.schema.json where it has one, on the merged values as Helm validates them."""
    defaults = chart_defaults(chart_key)
    open_paths = []
    for key, sub in subchart_paths(chart_key).items():
        if sub is None:
            open_paths.append(key)
        else:  # the subchart's defaults, overridden by what the parent chart sets for it
            defaults[key] = _deep_merge(chart_defaults(sub), defaults.get(key) or {})
    entries = MAP_ENTRY_DEFAULTS.get(chart_key, {})
    problems = unknown_value_paths(values, defaults, [*ALLOWED_UNDECLARED.get(chart_key, {}), *entries], open_paths)
    for map_path, defaults_path in entries.items():
        entry_defaults = _at(defaults, defaults_path)
        for name, entry in (_at(values, map_path) or {}).items():
            if not isinstance(entry, Mapping):
                problems.append(f"{map_path}.{name}: we set a {_kind(entry)} where the chart takes a mapping like {defaults_path}")
                continue
            prefix = defaults_path + "."
            inside = [a[len(prefix):] for a in ALLOWED_UNDECLARED.get(chart_key, {}) if a.startswith(prefix)]
            problems += [f"{map_path}.{name}.{p}" for p in unknown_value_paths(entry, entry_defaults, inside)]
    schema = chart_values_schema(chart_key)
    if schema is not None:
        # a key the chart's own schema declares is known, even where values.yaml only has it in a
        # comment (cert-manager: ``global.revisionHistoryLimit``, ``hostUsers``…); the schema then
        # checks it and everything below it
        undeclared = ": not in the chart's default values"
        problems = [
            p for p in problems if not (p.endswith(undeclared) and _schema_declares(schema, p[: -len(undeclared)].split(".")))
        ]
        import jsonschema

        merged = _deep_merge(_chart_defaults(chart_key), values)
        validator = jsonschema.validators.validator_for(schema)(schema)
        for err in sorted(validator.iter_errors(merged), key=lambda e: list(map(str, e.path))):
            problems.append(f"{_dotted(err.absolute_path) or '(root)'}: values.schema.json: {err.message}")
    return problems


def _at(values: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path of nested mappings, or None."""
    node: Any = values
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _schema_declares(schema: dict, path: list[str]) -> bool:
    """Whether a chart's values JSON schema declares the property at ``path`` (local ``$ref``s
    followed)."""
    node: Any = schema
    for key in [*path, None]:
        for _ in range(32):  # follow $ref chains
            if not isinstance(node, dict) or "$ref" not in node:
                break
            ref = node["$ref"]
            if not ref.startswith("#/"):
                return False
            node = schema
            for part in ref[2:].split("/"):
                node = node.get(part, {}) if isinstance(node, dict) else {}
        if key is None:
            return True
        props = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(props, dict) or key not in props:
            return False
        node = props[key]
    return True


# --- CRDs -------------------------------------------------------------------------------------------


def _dotted(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@functools.lru_cache(maxsize=1)
def _crd_index() -> dict[tuple[str, str, str], dict]:
    """(group, kind, version) -> the CRD version entry, for every CRD document in the data."""
    index: dict[tuple[str, str, str], dict] = {}
    root = require_upstream()
    for path in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
        text = path.read_text(encoding="utf-8")
        if "CustomResourceDefinition" not in text:
            continue
        for doc in yaml.load_all(text, Loader=_Loader):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec.get("versions") or []:
                key = (spec["group"], spec["names"]["kind"], version["name"])
                index[key] = {**version, "_file": str(path.relative_to(root))}
    return index


def crd_groups() -> set[str]:
    return {group for group, _, _ in _crd_index()}


def crd_schema(group: str, kind: str, version: str) -> dict:
    """The ``openAPIV3Schema`` of that CRD version, as upstream ships it. KeyError if unknown."""
    entry = _crd_index().get((group, kind, version))
    if entry is None:
        known = sorted(v for g, k, v in _crd_index() if (g, k) == (group, kind))
        raise KeyError(f"no CRD for {kind} in {group}/{version} in the upstream data (versions there: {known or 'none'})")
    return entry["schema"]["openAPIV3Schema"]


def to_json_schema(schema: Any, structural: bool = True) -> Any:
    """A Kubernetes structural schema as plain JSON Schema (draft 4, which OpenAPI 3.0 follows).

    * ``x-kubernetes-int-or-string: true``: an integer or a string;
    * ``nullable: true``: null is accepted too;
    * ``x-kubernetes-preserve-unknown-fields: true``: unknown fields are kept there;
    * ``x-kubernetes-embedded-resource: true``: ``apiVersion``, ``kind``, ``metadata`` are implied;
    * otherwise an object accepts no field that it does not declare (``additionalProperties:
      false`` unless it has its own ``additionalProperties``), as the API server prunes or rejects
      unknown fields: that is what makes a typo'd field fail. An object with no ``properties`` at
      all keeps nothing either, so only ``{}`` passes there. This applies to the structural part
      only, not inside ``allOf``/``anyOf``/``oneOf``/``not`` (value validations that may list a
      subset of the fields);
    * a field with a ``default`` is dropped from its parent's ``required``: the API server defaults
      before it validates;
    * ``x-kubernetes-validations`` (CEL), ``format`` and ``x-kubernetes-list-type`` are not checked.
    """
    if isinstance(schema, list):
        return [to_json_schema(s, structural) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {k: to_json_schema(v, structural) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = to_json_schema(value, structural)
        elif key in ("allOf", "anyOf", "oneOf", "not"):
            out[key] = to_json_schema(value, structural=False)
        elif key.startswith("x-kubernetes-") or key in ("nullable", "description", "format", "default", "example"):
            continue
        else:
            out[key] = copy.deepcopy(value)
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if schema.get("nullable"):
        if "type" in out:
            out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if "required" in out and "properties" in schema:
        defaulted = {k for k, v in schema["properties"].items() if isinstance(v, dict) and "default" in v}
        out["required"] = [r for r in out["required"] if r not in defaulted] or None
        if out["required"] is None:
            del out["required"]
    is_object = schema.get("type") == "object" or "properties" in schema
    if (
        structural
        and is_object
        and not schema.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in schema
    ):
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=None)
def _validator(group: str, kind: str, version: str):
    import jsonschema

    schema = to_json_schema(crd_schema(group, kind, version))
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}  # validated by the API server itself
    return jsonschema.Draft4Validator(schema)


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def validate_custom_object(obj: Mapping[str, Any]) -> list[str]:
    """Errors of a custom resource (apiVersion, kind, metadata, spec…) against its upstream CRD;
    [] when valid. An unknown group/kind/version is an error, as is a version the CRD does not
    serve. ``metadata`` is only checked to be a mapping."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [f"apiVersion and kind must be strings (got {api_version!r}, {kind!r})"]
    group, version = _split_api_version(api_version)
    entry = _crd_index().get((group, kind, version))
    if entry is None:
        try:
            crd_schema(group, kind, version)
        except KeyError as exc:
            return [exc.args[0]]
    errors = []
    if not entry.get("served", False):
        errors.append(f"{kind} {api_version} is not served by the CRD ({entry['_file']})")
    if not isinstance(obj.get("metadata", {}), Mapping):
        errors.append("metadata: must be a mapping")
    for err in sorted(_validator(group, kind, version).iter_errors(dict(obj)), key=lambda e: list(map(str, e.path))):
        errors.append(f"{_dotted(err.absolute_path) or '(root)'}: {err.message}")
    return errors


# Parts of custom resources that the CRD keeps as ``x-kubernetes-preserve-unknown-fields`` (so the
# API server accepts any typo there) but that the operator turns into core objects: a container
# (``corev1.Container`` in the field's description), the pod template's spec (``corev1.PodSpec``),
# the Service's spec (``corev1.ServiceSpec``). (group, kind) -> the container fields of ``spec``.
# Slinky v1beta1: crds/slinky.slurm.net_*.yaml at v1.2.1.
EMBEDDED_CONTAINERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("slinky.slurm.net", "Controller"): ("slurmctld", "reconfigure", "logfile"),
    ("slinky.slurm.net", "NodeSet"): ("slurmd", "logfile"),
    ("slinky.slurm.net", "LoginSet"): ("login", "initconf"),
    ("slinky.slurm.net", "RestApi"): ("slurmrestd",),
    ("slinky.slurm.net", "Accounting"): ("slurmdbd",),
}


def embedded_core_objects(obj: Mapping[str, Any]) -> list[tuple[str, dict]]:
    """The core objects a custom resource of :data:`EMBEDDED_CONTAINERS` stands for, to validate
    with :func:`validate_core_object`: (where, object). A Pod of the pod template's spec with the
    resource's containers in it, and a Service of ``spec.service.spec`` where there is one."""
    group, _ = _split_api_version(str(obj.get("apiVersion")))
    names = EMBEDDED_CONTAINERS.get((group, str(obj.get("kind"))))
    if names is None:
        return []
    spec = obj.get("spec") or {}
    pod_spec = dict(((spec.get("template") or {}).get("spec")) or {})
    pod_spec["containers"] = [*pod_spec.get("containers", []), *({"name": n, **spec[n]} for n in names if spec.get(n))]
    out = [("spec.template.spec with spec." + "/".join(names), {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": pod_spec})]
    service = (spec.get("service") or {}).get("spec")
    if service:
        out.append(("spec.service.spec", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": service}))
    return out


# --- core objects -----------------------------------------------------------------------------------


def kubernetes_validate_version(kubernetes_version: str) -> str:
    """The schema version kubernetes-validate is given for ``1.N`` (also ``1.N.P``, ``v1.N``): the
    closest it ships, that is the same minor (kubernetes-validate 1.37.0 ships 1.25 .. 1.37), else
    the newest older one (a newer API server still serves what it describes), else its oldest."""
    import kubernetes_validate.utils as kv
    from packaging.version import Version

    want = Version(kubernetes_version.lstrip("v")).release[:2]
    shipped = sorted(set(kv.all_versions()), key=Version)
    older = [v for v in shipped if Version(v).release[:2] <= want]
    return older[-1] if older else shipped[0]


def validate_core_object(obj: Mapping[str, Any], kubernetes_version: str) -> list[str]:
    """Errors of a built-in Kubernetes object against the OpenAPI schema of that Kubernetes
    version, strict (unknown fields rejected), by kubernetes-validate; [] when valid. It stops at
    the first error it finds. A kind that has no schema (wrong apiVersion, say) is an error."""
    import kubernetes_validate

    version = kubernetes_validate_version(kubernetes_version)
    try:
        kubernetes_validate.validate(dict(obj), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{_dotted(exc.path) or '(root)'}: {exc.message} (Kubernetes {exc.version} schema)"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [exc.message]
    return []


def is_core_api_version(api_version: str) -> bool:
    """Built-in API: the core group (``v1``), a group without a dot (``apps``, ``batch``) or a
    ``*.k8s.io`` group, unless that group is one whose CRDs are in the upstream data."""
    group, _ = _split_api_version(api_version)
    if upstream_dir() is not None and group in crd_groups():
        return False
    return "." not in group or group.endswith(".k8s.io")


# --- recorded resources -----------------------------------------------------------------------------

PLACEHOLDERS = (COMPUTED, SECRET)


def strip_placeholders(value: Any, path: str = "", keep_keys: bool = False) -> tuple[Any, list[str]]:
    """``value`` without the leaves that are only placeholders in a plan (``(computed)``: unknown
    until created; ``[secret]``: hidden), and one note per leaf removed (``spec.x = (computed)``,
    paths as recorded).

    Their real type is unknown, so they can neither pass nor fail: they are removed and counted.
    A removed leaf that the schema requires shows as a ``required`` error, which the note explains.
    ``keep_keys``: a placeholder in a mapping becomes None instead of going away (for Helm values:
    the key is still checked against the chart's defaults, its value is not); in a list it goes.
    """
    notes: list[str] = []

    def walk(v: Any, p: str) -> Any:
        if isinstance(v, dict):
            out = {}
            for k, item in v.items():
                sub = f"{p}.{k}" if p else str(k)
                if isinstance(item, str) and item in PLACEHOLDERS:
                    notes.append(f"{sub} = {item}")
                    if keep_keys:
                        out[k] = None
                else:
                    out[k] = walk(item, sub)
            return out
        if isinstance(v, list):
            out_list = []
            for i, item in enumerate(v):
                if isinstance(item, str) and item in PLACEHOLDERS:
                    notes.append(f"{p}[{i}] = {item}")
                else:
                    out_list.append(walk(item, f"{p}[{i}]"))
            return out_list
        return v

    return walk(value, path), notes


def object_from_resource(res: Any, placeholders: Optional[list[str]] = None) -> Optional[dict]:
    """The Kubernetes manifest a recorded pulumi_kubernetes resource stands for, or None for
    anything else (other providers, the kubernetes provider itself, Helm releases, components such
    as ``yaml/v2:ConfigGroup``, ``*Patch`` and ``*List`` resources, which are not whole objects).

    Placeholder leaves are removed (:func:`strip_placeholders`); a note for each, prefixed with the
    resource's type and name, is appended to ``placeholders`` when given.
    """
    type_ = res.type
    if not type_.startswith("kubernetes:") or not getattr(res, "custom", True):
        return None
    _, api, kind = type_.split(":", 2)
    if api.startswith("helm.sh/") or kind.endswith("Patch") or kind.endswith("List"):
        return None
    inputs = res.inputs
    if not isinstance(inputs.get("apiVersion"), str) or not isinstance(inputs.get("kind"), str):
        return None
    obj, notes = strip_placeholders(dict(inputs))
    if placeholders is not None:
        placeholders.extend(f"{type_} {res.name}: {n}" for n in notes)
    return obj


def kubernetes_version(recording: Any) -> str:
    """The stack's Kubernetes version: the managed cluster's ``version`` input (OVHcloud MKS,
    Scaleway Kapsule), else :data:`DEFAULT_KUBERNETES_VERSION`."""
    for type_ in ("ovh:CloudProject/kube:Kube", "scaleway:kubernetes/cluster:Cluster"):
        for res in recording.by_type(type_):
            version = res.inputs.get("version")
            if isinstance(version, str) and re.match(r"^v?\d+\.\d+", version):
                return version
    return DEFAULT_KUBERNETES_VERSION
