"""Node pools: flavour or GPU model, node counts, labels, taints, GPU sharing."""

from __future__ import annotations

import re

from typing import Any, Literal, Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .. import catalog as _catalog
from .selfbuilt import Host, fgpu_problems, server_count_problem, vm_type
from .common import CATALOG_PROVIDERS, Labels, PROVIDER_TITLES, SELF_BUILT_PROVIDERS, _GPU_MODEL_ID, _Model, _check_label_key, _context_region, _dns_label, _only_for, _provider


class Taint(_Model):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        _check_label_key(v)
        return v


MIG_CAPABLE = ("a100", "a30", "h100", "h200", "h800", "gh200", "b200", "b300", "gb200")


def _pool_gpu_model(info: ValidationInfo) -> Optional[str]:
    """The GPU model id of the pool being validated, from its flavour (catalog providers)."""
    provider, flavor = _provider(info), info.data.get("flavor")
    if provider == "outscale":
        flavor = info.data.get("gpu_model")  # the fGPU model; the flavour is the VM type
    offer = _catalog.load().offer(provider, flavor) if provider in CATALOG_PROVIDERS and flavor else None
    return offer.gpu_model_id if offer is not None else None


class Pool(_Model):
    """A node pool. GPU pools get the GPU label and taint from the platform, not from the user.

    Field order matters: validators read the fields declared before them (``role`` and
    ``availability_zone`` come before ``flavor``, which is checked against both).
    """

    name: str
    role: Literal["system", "training", "inference", "slurm"]  # slurm: nodes of its own (docs/slurm.md)
    availability_zone: Optional[str] = None
    flavor: Optional[str] = Field(default=None, validate_default=True)
    # existing and bare-metal clusters: what the nodes have, since no catalog flavour describes them;
    # Outscale: the flexible GPU model (nvidia-a100-80) and how many each VM gets
    gpu_model: Optional[str] = Field(default=None, validate_default=True)
    gpus_per_node: Optional[int] = Field(default=None, ge=1, le=16, strict=True, validate_default=True)
    min_nodes: int = Field(default=0, ge=0, le=1000, strict=True)
    max_nodes: int = Field(default=1, ge=1, le=1000, strict=True)
    desired_nodes: int = Field(default=1, ge=0, le=1000, strict=True)
    autoscale: bool = False
    # bare metal only: the servers of the pool (its size is their number)
    hosts: tuple[Host, ...] = Field(default=(), validate_default=True)
    labels: Labels = Field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    # OVHcloud only
    anti_affinity: bool = False
    monthly_billed: bool = False
    # Scaleway only
    root_volume_gb: Optional[int] = Field(default=None, ge=20, le=10000, strict=True)
    startup_taints: tuple[Taint, ...] = ()
    placement_group: bool = False
    # GPU sharing through the platform's GPU operator: inference pools only
    gpu_sharing: Optional[Literal["time-slicing", "mig"]] = None
    time_slicing_replicas: Optional[int] = Field(default=None, ge=2, le=48, strict=True, validate_default=True)
    mig_profile: Optional[str] = Field(default=None, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _nodes_shorthand(cls, data: Any) -> Any:
        """``nodes: N`` is a fixed-size pool: min, desired and max all N."""
        if isinstance(data, dict) and isinstance(data.get("hosts"), list) and data["hosts"] and not {
                "nodes", "min_nodes", "desired_nodes", "max_nodes"} & set(data):
            data = {**data, "nodes": len(data["hosts"])}  # a bare-metal pool is as large as its host list
        if not isinstance(data, dict) or "nodes" not in data:
            return data
        n = data["nodes"]
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 1000:
            raise ValueError(f"nodes must be a whole number from 0 to 1000 (given: {n!r})")
        clash = [k for k in ("min_nodes", "desired_nodes", "max_nodes") if k in data]
        if clash:
            raise ValueError(f"nodes sets min_nodes, desired_nodes and max_nodes at once; remove {', '.join(clash)} or nodes")
        rest = {k: v for k, v in data.items() if k != "nodes"}
        return {**rest, "min_nodes": n, "desired_nodes": n, "max_nodes": max(n, 1)}

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _dns_label(v, "pool name", 20)

    @field_validator("availability_zone")
    @classmethod
    def _zone(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        region = _context_region(info)
        if v is None or region is None:
            return v
        if not region.zones:
            raise ValueError(f"{region.name} is a single-zone region; leave availability_zone out")
        if v not in region.zones:
            raise ValueError(f"not a zone of {region.name}; allowed: {', '.join(region.zones)}")
        return v

    @field_validator("flavor")
    @classmethod
    def _flavor(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        provider = _provider(info)
        if provider in ("existing", "baremetal"):
            return v  # free text: what the nodes are, for people reading the plan
        if v is None:
            raise ValueError("is required: the instance type of the pool's nodes")
        if provider == "outscale":
            vm_type(v)  # the VM type; GPUs come as flexible GPUs (gpu_model), checked with them
            return v
        if v is None:
            raise ValueError("is required: the instance type of the pool's nodes")
        region = _context_region(info)
        if region is None:
            return v  # the provider or region is reported on its own
        cat, title = _catalog.load(), PROVIDER_TITLES[region.provider]
        offer = cat.offer(region.provider, v)
        zone = info.data.get("availability_zone") or (info.context or {}).get("zone")
        if region.provider == "scaleway":
            if zone is None:
                return v  # the default zone is reported on its own
            sold = ", ".join(cat.flavors_in(region.provider, zone))
            if offer is None:
                raise ValueError(f"not an Instance type {title} sells in {zone}; allowed: {sold}")
            if not offer.sold_in(zone):
                where = [loc for loc in offer.regions or () if loc in region.zones]
                hint = f"set availability_zone (or scaleway.zone) to {' or '.join(where)}" if where else f"it is not sold in {region.name} at all"
                raise ValueError(f"{title} sells {v} only in {', '.join(offer.regions or ())}, not in {zone}; {hint}")
        else:
            sold = ", ".join(cat.flavors_in(region.provider, region.name))
            if offer is None:
                raise ValueError(f"not a flavour {title} sells in {region.name}; allowed: {sold}")
            if not offer.sold_in_region(region):
                raise ValueError(
                    f"{title} sells {v} only in {', '.join(offer.regions or ())}, not in {region.name}; allowed there: {sold}"
                )
        role = info.data.get("role")
        if role == "system" and offer.is_gpu:
            raise ValueError(f"'system' pools must use a CPU flavour, {v!r} has GPUs")
        if role in ("training", "inference") and not offer.is_gpu:
            raise ValueError(f"{role!r} pools need a GPU flavour, {v!r} has none")
        return v

    @field_validator("gpu_model", "gpus_per_node")
    @classmethod
    def _existing_gpus(cls, v: Any, info: ValidationInfo) -> Any:
        """What an existing cluster's GPU pools must say about their nodes, since no catalog does."""
        name = info.field_name
        if v is not None:
            _only_for(name, ("existing", "baremetal", "outscale"), info)
        provider = _provider(info)
        if provider == "outscale":
            return _outscale_gpus(v, info)
        if provider not in ("existing", "baremetal"):
            return v
        role = info.data.get("role")
        if role == "system" and v is not None:
            raise ValueError(f"'system' pools have no GPUs; remove {name}")
        if role not in ("training", "inference"):
            return v
        known = ", ".join(_catalog.load().gpu_models())
        what = f"the GPU model id, e.g. one of {known}" if name == "gpu_model" else "how many GPUs each node has"
        if v is None:
            raise ValueError(f"is required for {role!r} pools of {PROVIDER_TITLES[provider]}: {what}")
        if name == "gpu_model" and (not _GPU_MODEL_ID.match(v) or len(v) > 63):
            raise ValueError(f"must be a lowercase GPU model id such as h100-80gb (letters, digits, '-'); catalog ids: {known}")
        return v

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, v: tuple[Host, ...], info: ValidationInfo) -> tuple[Host, ...]:
        if v:
            _only_for("hosts", ("baremetal",), info)
        elif _provider(info) == "baremetal":
            raise ValueError("is required for bare-metal pools: the servers of the pool, each with its address")
        return v

    @field_validator("anti_affinity", "monthly_billed")
    @classmethod
    def _ovh_only(cls, v: bool, info: ValidationInfo) -> bool:
        _only_for(info.field_name, ("ovh",), info)
        return v

    @field_validator("root_volume_gb", "startup_taints")
    @classmethod
    def _scaleway_only(cls, v: Any, info: ValidationInfo) -> Any:
        _only_for(info.field_name, ("scaleway",), info)
        return v

    @field_validator("placement_group")
    @classmethod
    def _placement_group(cls, v: bool, info: ValidationInfo) -> bool:
        _only_for("placement_group", ("scaleway",), info)
        if v and info.data.get("role") != "training":
            raise ValueError("placement groups keep the nodes of a multi-node training job close together; only 'training' pools take one")
        return v

    @field_validator("gpu_sharing")
    @classmethod
    def _sharing(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        if v is None:
            return v
        role = info.data.get("role")
        if role != "inference":
            raise ValueError(
                f"GPU sharing gives no memory (time-slicing) or no full GPU (MIG) to a job; only 'inference' pools take it, not {role!r}"
            )
        if (info.context or {}).get("gpu_operator_elsewhere"):
            raise ValueError(
                f"{PROVIDER_TITLES.get(_provider(info) or '', 'the provider')} runs the GPU operator itself; "
                "configure sharing there, the platform installs no operator to do it"
            )
        model = info.data.get("gpu_model") or _pool_gpu_model(info)
        if v == "mig" and model is not None and not any(model.startswith(p) for p in MIG_CAPABLE):
            raise ValueError(f"MIG needs an A100, H100, H200, B200 or B300 class GPU; {model} has no MIG")
        return v

    @field_validator("time_slicing_replicas")
    @classmethod
    def _replicas(cls, v: Optional[int], info: ValidationInfo) -> Optional[int]:
        if "gpu_sharing" not in info.data:
            return v  # gpu_sharing failed its own check, reported there
        if v is not None and info.data.get("gpu_sharing") != "time-slicing":
            raise ValueError("applies only with gpu_sharing: time-slicing")
        if v is None and info.data.get("gpu_sharing") == "time-slicing":
            raise ValueError("is required with gpu_sharing: time-slicing: how many pods share one GPU")
        return v

    @field_validator("mig_profile")
    @classmethod
    def _mig_profile(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        if "gpu_sharing" not in info.data:
            return v  # gpu_sharing failed its own check, reported there
        if v is not None and info.data.get("gpu_sharing") != "mig":
            raise ValueError("applies only with gpu_sharing: mig")
        if v is None and info.data.get("gpu_sharing") == "mig":
            raise ValueError("is required with gpu_sharing: mig: the layout of every GPU of the pool, e.g. all-1g.10gb")
        if v is not None and not re.fullmatch(r"all-(disabled|balanced|\d+g\.\d+gb(\.me)?)", v):
            raise ValueError("must be a MIG layout name the MIG manager knows, e.g. all-1g.10gb, all-3g.40gb or all-balanced")
        return v

    @model_validator(mode="after")
    def _sizes(self, info: ValidationInfo) -> "Pool":
        def show(name: str) -> str:
            value = getattr(self, name)
            return f"{name} ({value}{'' if name in self.model_fields_set else ', the default'})"

        problems = []
        if self.min_nodes > self.max_nodes:
            problems.append(f"{show('min_nodes')} must not exceed {show('max_nodes')}")
        elif not self.min_nodes <= self.desired_nodes <= self.max_nodes:
            problems.append(f"{show('desired_nodes')} must be between {show('min_nodes')} and {show('max_nodes')}")
        if self.anti_affinity and self.max_nodes > 5:
            problems.append(f"anti_affinity pools hold at most 5 nodes on OVHcloud MKS; {show('max_nodes')} is more")
        if self.role == "system" and self.min_nodes < 1:
            problems.append("a system pool needs min_nodes >= 1: cluster services must always have a node")
        if self.autoscale and self.role == "slurm":
            problems.append("a Slurm pool has a fixed size (set nodes, not autoscale): Slurm jobs make no pending pods, so "
                            "the autoscaler never adds a node for them, and it ignores slurmd's pods when it removes one")
        if self.autoscale and _provider(info) == "existing":
            problems.append("autoscale is decided by whoever runs the existing cluster; remove it")
        if self.autoscale and _provider(info) in SELF_BUILT_PROVIDERS:
            problems.append("autoscale: a self-built cluster has no autoscaler; size the pool with nodes")
        if self.role == "system" and _provider(info) in SELF_BUILT_PROVIDERS and server_count_problem(self.desired_nodes):
            problems.append(server_count_problem(self.desired_nodes))
        if self.hosts and self.desired_nodes != len(self.hosts):
            problems.append(f"{len(self.hosts)} hosts listed but {show('desired_nodes')}; drop the node counts, the hosts say it")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _outscale_gpus(v: Any, info: ValidationInfo) -> Any:
    """An Outscale pool's flexible GPUs: a model sold in the region, on a VM type that takes them."""
    role, name = info.data.get("role"), info.field_name
    if role == "slurm" and v is None and info.data.get("gpu_model") is None:
        return v  # a CPU pool for Slurm
    if role == "slurm":
        role = "training"  # a GPU pool for Slurm: checked as any GPU pool
    if role == "system":
        if v is not None:
            raise ValueError(f"'system' pools have no GPUs; remove {name}")
        return v
    if role not in ("training", "inference"):
        return v
    region = (info.context or {}).get("region")
    if name == "gpu_model":
        if v is None:
            cat = _catalog.load()
            sold = ", ".join(o.flavor for o in cat.offers("outscale") if o.is_gpu and region in (o.regions or ()))
            raise ValueError(f"is required for {role!r} pools on 3DS Outscale: the flexible GPU model"
                             + (f"; sold in {region}: {sold}" if sold else ""))
        problem = fgpu_problems(info.data.get("flavor") or "", v, 1, region).get("gpu_model")
        if problem:
            raise ValueError(problem)
        return v
    count = 1 if v is None else v
    model, flavor = info.data.get("gpu_model"), info.data.get("flavor")
    if model is None or flavor is None:
        return v  # reported on gpu_model or flavor
    problems = fgpu_problems(flavor, model, count, region)
    problems.pop("gpu_model", None)
    if problems:
        raise ValueError("; ".join(problems.values()))
    return count
