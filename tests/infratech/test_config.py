"""The typed stack configuration: a corpus of bad stacks, the default stack, and Pulumi.yaml."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pydantic
import pytest
import yaml

from infratech import config
from infratech.config import StackConfig, StackConfigError
from infratech.cli.stacks import read_config_file

HERE = Path(__file__).parent
ROOT = Path(__file__).parents[2]
BAD_STACKS = HERE / "bad_stacks"
DEFAULT_STACK = ROOT / "stacks" / "Pulumi.ovh-gra11.yaml"
PROJECT_NAME = "infratech"

_EXPECT = re.compile(r"^# expect: (?P<path>\S+?): (?P<text>.+)$")


# -- reading a stack file the way Pulumi hands it to the program ------------------------------
def raw_config(stack_file: Path) -> dict:
    """The ``infratech:`` keys of a stack file, as the program receives them under Pulumi."""
    return config.raw_from_config(read_config_file(stack_file, PROJECT_NAME)[0])


def secret_keys(stack_file: Path) -> set[str]:
    """The ``infratech:`` keys the stack file holds as Pulumi secrets (``secure:``), namespace removed."""
    prefix = config.NAMESPACE + ":"
    return {k[len(prefix):] for k in read_config_file(stack_file, PROJECT_NAME)[1] if k.startswith(prefix)}


def expectations(stack_file: Path) -> list[tuple[str, str]]:
    lines = stack_file.read_text(encoding="utf-8").splitlines()
    return [(m["path"], m["text"]) for line in lines if (m := _EXPECT.match(line))]


def _corpus_params():
    return [pytest.param(path, id=path.stem) for path in sorted(BAD_STACKS.glob("*.yaml"))]


# -- the corpus of bad stacks ----------------------------------------------------------------
def test_corpus_is_large_enough_and_well_formed():
    files = sorted(BAD_STACKS.glob("*.yaml"))
    assert len(files) >= 25
    for path in files:
        assert re.fullmatch(r"\d{2,3}-[a-z0-9-]+\.yaml", path.name), path.name  # 100 onwards: three digits
        expects = expectations(path)
        assert expects, f"{path.name} states no '# expect:' line"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict) and isinstance(data.get("config"), dict), path.name
    numbers = [int(p.name.split("-", 1)[0]) for p in files]
    assert len(numbers) == len(set(numbers)), "two corpus files share a number"


@pytest.mark.parametrize("stack_file", _corpus_params())
def test_bad_stack_is_rejected_with_every_problem_named(stack_file: Path):
    expects = expectations(stack_file)
    with pytest.raises(StackConfigError) as info:
        config.parse(raw_config(stack_file), stack_file.stem, secret_keys(stack_file))
    err = info.value
    rendered = err.render()
    lines = [line.strip() for line in rendered.splitlines()[1:]]

    for problem in err.problems:
        assert problem.path and problem.path.strip(), f"a problem without a path:\n{rendered}"
        assert problem.message.strip(), f"a problem without a message:\n{rendered}"

    for path, text in expects:
        on_path = [line for line in lines if line.startswith(f"{path}: ")]
        assert on_path, f"no problem reported at {path!r}:\n{rendered}"
        assert any(text in line for line in on_path), f"no line for {path!r} contains {text!r}:\n{rendered}"

    expected_paths = {path for path, _ in expects}
    assert len(err.problems) == len(expected_paths), f"expected problems at {sorted(expected_paths)}:\n{rendered}"
    assert rendered.splitlines()[0].startswith(f"stack {stack_file.stem!r}: {len(err.problems)} configuration problem")
    assert str(err) == rendered


# -- the default stack -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def default() -> StackConfig:
    return config.parse(raw_config(DEFAULT_STACK), "ovh-gra11")


def test_default_stack_parses(default: StackConfig):
    assert default.provider == "ovh"
    assert default.name == "llm-gra11"
    assert default.region == "GRA11"
    assert default.labels == {"owner": "platform", "team": "ml-platform", "cost-centre": "ml-research"}
    assert [(p.name, p.flavor, p.role) for p in default.pools] == [
        ("system", "b3-16", "system"),
        ("h100", "h100-380", "training"),
        ("l40s", "l40s-90", "inference"),
    ]
    assert (default.pools[1].min_nodes, default.pools[1].desired_nodes, default.pools[1].max_nodes) == (0, 2, 4)
    assert default.pools[0].anti_affinity and not default.pools[1].anti_affinity
    assert [t.name for t in default.teams] == ["pretraining", "applied"]
    assert default.teams[1].gpu_quota == {"h100-80gb": 2, "l40s": 3}
    assert default.ovh.api_allowed_cidrs == ("203.0.113.0/24",)
    assert default.budget_eur_per_month == 20000
    assert [default.offer(p).is_gpu for p in default.pools] == [False, True, True]


SLURM_STACK = ROOT / "stacks" / "Pulumi.ovh-gra11-slurm.yaml"


def test_slurm_stack_parses_and_its_gpus_stay_out_of_the_teams_quotas():
    raw = raw_config(SLURM_STACK)
    cfg = config.parse(raw, "ovh-gra11-slurm")
    s = cfg.platform.slurm
    assert [(p.name, p.pools, p.gpus, p.default_time_hours, p.max_time_hours) for p in s.partitions] == [
        ("gpu", ("slurm-h100",), True, 2, 20)]
    assert s.default_partition == "gpu" and len(s.login.ssh_public_keys) == 1 and s.accounting is None
    assert config.parse(raw_config(DEFAULT_STACK), "ovh-gra11").platform.slurm is None  # off by default
    # a quota of a GPU model that only a Slurm pool has is refused: Kueue has no such GPUs
    only_slurm = {**raw, "pools": [p for p in raw["pools"] if p["name"] != "h100"],
                  "teams": [{"name": "pretraining", "gpu_quota": {"h100-80gb": 4}}]}
    with pytest.raises(StackConfigError) as info:
        config.parse(only_slurm, "x")
    assert "teams[0].gpu_quota: GPU model 'h100-80gb' is not provided by any pool of this stack; allowed: l40s" in info.value.render()


def test_slurm_pools_without_slurm_are_refused():
    raw = raw_config(SLURM_STACK)
    raw["platform"] = {k: v for k, v in raw["platform"].items() if k != "slurm"}
    with pytest.raises(StackConfigError) as info:
        config.parse(raw, "x")
    assert "platform: pool(s) slurm-h100 have role slurm but platform.slurm is not set" in info.value.render()


def test_model_is_frozen(default: StackConfig):
    with pytest.raises(pydantic.ValidationError):
        default.name = "other"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        default.pools[0].max_nodes = 50  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        default.ovh.kube_version = "1.30"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        default.object_storage.buckets[0].protect = False  # type: ignore[misc]
    assert isinstance(default.pools, tuple) and isinstance(default.teams, tuple)
    assert default.name == "llm-gra11" and default.pools[0].max_nodes == 3


def test_defaults_are_applied(default: StackConfig):
    buckets = default.object_storage.buckets
    assert [b.name for b in buckets] == ["datasets", "checkpoints"]
    assert all(b.versioning and b.encryption and b.protect for b in buckets)
    assert default.object_storage.region is None
    assert default.network.cidr == "10.42.0.0/16" and default.network.gateway
    assert default.ovh.kube_version == "1.34"
    assert default.ovh.plan is None and default.ovh_plan == "free", "the plan GRA11 sells"
    assert default.ovh.update_policy == "MINIMAL_DOWNTIME"
    assert default.ovh.service_name is None
    switches = ("gpu_operator", "kueue", "trainer", "storage", "monitoring", "tenancy", "serving")
    assert all(getattr(default.platform, name) is True for name in switches), "every component on by default"
    assert default.platform.serving_host is None and default.platform.acme is None
    assert default.budget_enforced is False
    h100 = default.pools[1]
    assert (h100.monthly_billed, h100.availability_zone, h100.labels, h100.taints) == (False, None, {}, ())


def test_bucket_name_and_object_storage_region(default: StackConfig):
    assert [default.bucket_name(b) for b in default.object_storage.buckets] == [
        "llm-gra11-datasets",
        "llm-gra11-checkpoints",
    ]
    assert default.region_facts.name == "GRA11"
    assert default.object_storage_region == "GRA"

    raw = raw_config(DEFAULT_STACK)
    overridden = config.parse({**raw, "object_storage": {"region": "SBG"}}, "t")
    assert overridden.object_storage_region == "SBG"
    assert [b.name for b in overridden.object_storage.buckets] == ["datasets", "checkpoints"]

    paris = config.parse(
        {
            "provider": "ovh",
            "name": "paris",
            "region": "EU-WEST-PAR",
            "pools": [
                {"name": "system", "flavor": "b3-8", "role": "system", "min_nodes": 1, "max_nodes": 3},
            ],
        },
        "t",
    )
    # no GPU pool: MKS in the 3-AZ region is Standard, which has none (bad_stacks/83)
    assert paris.ovh_plan == "standard"
    assert paris.object_storage_region == "EU-WEST-PAR"
    assert paris.bucket_name(paris.object_storage.buckets[1]) == "paris-checkpoints"


def test_quoted_numeric_strings_stay_strings(tmp_path: Path):
    text = DEFAULT_STACK.read_text(encoding="utf-8")
    text = text.replace("    cost-centre: ml-research\n", '    cost-centre: "4200"\n')
    text = text.replace(
        "      - 203.0.113.0/24\n", '      - 203.0.113.0/24\n    service_name: "0123456789"\n    kube_version: "1.31"\n'
    )
    text = text.replace("  infratech:name: llm-gra11\n", '  infratech:name: "2026"\n')
    stack = tmp_path / "Pulumi.numeric.yaml"
    stack.write_text(text, encoding="utf-8")

    raw = raw_config(stack)
    assert raw["name"] == "2026"  # a string key keeps Pulumi's text, never json.loads'ed to 2026
    with pytest.raises(StackConfigError) as info:
        config.parse(raw, "numeric")
    # a numeric name is no DNS label, but it reaches the check as the text the user wrote
    assert [(p.path, p.given) for p in info.value.problems] == [("name", "2026")]

    cfg = config.parse({**raw, "name": "n2026"}, "numeric")
    assert cfg.labels["cost-centre"] == "4200"
    assert cfg.ovh.service_name == "0123456789"
    assert cfg.ovh.kube_version == "1.31"
    assert all(isinstance(v, str) for v in (cfg.labels["cost-centre"], cfg.ovh.service_name, cfg.ovh.kube_version))


# -- Pulumi.yaml declares exactly the model's keys --------------------------------------------
_PULUMI_TYPES = {str: "string", bool: "boolean", int: "integer", pydantic.SecretStr: "string"}


def _scalar(annotation) -> type | None:
    """str, bool or int for a scalar field (Optional[...] unwrapped); None for anything else."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else None
    return annotation if annotation in _PULUMI_TYPES else None


def test_pulumi_yaml_declares_every_stack_key():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))
    declared = project["config"]
    fields = StackConfig.model_fields

    assert set(declared) == set(fields), (
        f"missing from Pulumi.yaml: {sorted(set(fields) - set(declared))}; "
        f"not in the model: {sorted(set(declared) - set(fields))}"
    )
    for key, spec in declared.items():
        assert isinstance(spec, dict), key
        assert isinstance(spec.get("description"), str) and spec["description"].strip(), f"{key} has no description"
        scalar = _scalar(fields[key].annotation)
        if "type" in spec:
            assert scalar is not None, f"{key} is declared {spec['type']!r} but the model holds {fields[key].annotation}"
            assert spec["type"] == _PULUMI_TYPES[scalar], f"{key}: Pulumi.yaml says {spec['type']!r}, the model {scalar.__name__}"
        else:
            assert scalar is None, f"{key} is a plain {scalar.__name__} in the model but has no type in Pulumi.yaml"
        is_secret = scalar is pydantic.SecretStr
        assert bool(spec.get("secret")) == is_secret, f"{key}: Pulumi.yaml must say secret: true exactly for credentials"
