"""The whole stack file, validated section by section against the catalog."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import SecretStr, Field, ValidationInfo, field_validator

from .. import catalog as _catalog
from .common import (CATALOG_PROVIDERS, Labels, NAMESPACE, PROVIDERS, PROVIDER_TITLES, SECRET_KEYS, SELF_BUILT_PROVIDERS, _Model,
                     _dns_label, _only_for, _repeated)
from .pools import Pool
from .providers import ExistingSettings, OvhSettings, ScalewaySettings, _ovh_plan
from .selfbuilt import BaremetalSettings, OutscaleSettings, vm_type
from .storage import Bucket, Network, ObjectStorage
from .platform import Platform
from .mirror import Mirror
from .slurm import slurm_problems
from .teams import Team
from dataclasses import replace

from ..endpoints import s3_endpoint
from ..policy.model import Settings
from ..state import Backend, describe, s3_url, state_bucket
from .policy import Policy
from .state import StateSettings


class StackConfig(_Model):
    """The whole stack, as read from ``stacks/Pulumi.<stack>.yaml``."""

    provider: str
    name: str = "infratech"
    region: Optional[str] = Field(default=None, validate_default=True)
    labels: Labels = Field(default_factory=dict)
    ovh: OvhSettings = OvhSettings()
    scaleway: ScalewaySettings = ScalewaySettings()
    kubeconfig: Optional[SecretStr] = None
    object_store_access_key_id: Optional[SecretStr] = None
    object_store_secret_access_key: Optional[SecretStr] = None
    existing: Optional[ExistingSettings] = Field(default=None, validate_default=True)
    outscale: Optional[OutscaleSettings] = Field(default=None, validate_default=True)
    baremetal: Optional[BaremetalSettings] = Field(default=None, validate_default=True)
    network: Network = Network()
    pools: tuple[Pool, ...] = Field(min_length=1)
    object_storage: ObjectStorage = ObjectStorage()
    platform: Platform = Platform()
    teams: tuple[Team, ...] = ()
    budget_eur_per_month: Optional[int] = Field(default=None, ge=0, strict=True)
    budget_enforced: bool = False
    policy: Policy = Field(default=Policy(), validate_default=True)  # checked against platform.image_registry
    state: StateSettings = StateSettings()
    mirror: Optional[Mirror] = None  # an in-country mirror of every image and chart (docs/supply-chain.md)
    mirror_password: Optional[SecretStr] = None

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        if v not in PROVIDERS:
            known = " (it is in the price catalog, see `infratech cost compare`, but has no cluster component yet)"
            raise ValueError(f"unknown provider{known if v in PROVIDER_TITLES else ''}; allowed: {', '.join(PROVIDERS)}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _dns_label(v, "name", 30)

    @field_validator("region")
    @classmethod
    def _region(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        provider = info.data.get("provider")
        if provider is None:
            return v
        if provider in ("existing", "baremetal"):
            return _dns_label(v, "region (a name for where the cluster runs)", 63) if v is not None else "onprem"
        regions = _catalog.load().regions(provider)
        if v is None:
            allowed = ", ".join(sorted(r for r, facts in regions.items() if facts.kubernetes))
            raise ValueError(f"is required for {PROVIDER_TITLES[provider]}; allowed: {allowed}")
        if v not in regions or not regions[v].kubernetes:
            allowed = ", ".join(sorted(r for r, facts in regions.items() if facts.kubernetes))
            where = (f"a region of {PROVIDER_TITLES[provider]} offered for clusters" if provider in SELF_BUILT_PROVIDERS
                     else f"a region where {PROVIDER_TITLES[provider]} runs managed Kubernetes")
            raise ValueError(f"not {where}; allowed: {allowed}")
        return v

    @field_validator("ovh", "scaleway", "network", "object_storage")
    @classmethod
    def _provider_block(cls, v: Any, info: ValidationInfo) -> Any:
        owners = {"ovh": ("ovh",), "scaleway": ("scaleway",)}.get(info.field_name, CATALOG_PROVIDERS)
        _only_for(info.field_name, owners, info)
        return v

    @field_validator(*SECRET_KEYS)
    @classmethod
    def _secret(cls, v: Optional[SecretStr], info: ValidationInfo) -> Optional[SecretStr]:
        if v is None:
            return v
        if info.field_name == "mirror_password":
            mirror = info.data.get("mirror")
            if "mirror" in info.data and (mirror is None or not mirror.username):
                raise ValueError("is the password of mirror.username: set mirror (registry, username) too, or remove it")
        else:
            _only_for(info.field_name, ("existing", "baremetal", "outscale"), info)
        secret_keys = (info.context or {}).get("secret_keys")
        if secret_keys is not None and info.field_name not in secret_keys:
            raise ValueError(
                f"is a credential and must be a Pulumi secret: pulumi config set --secret {NAMESPACE}:{info.field_name} ..."
            )
        return v

    @field_validator("existing")
    @classmethod
    def _existing(cls, v: Optional[ExistingSettings], info: ValidationInfo) -> Optional[ExistingSettings]:
        provider = info.data.get("provider")
        if v is not None:
            _only_for("existing", ("existing",), info)
        if provider != "existing":
            return v
        if v is None:
            raise ValueError("is required for provider existing: kubeconfig_path (or the secret kubeconfig) and what the cluster has")
        # a secret that failed its own check is missing from info.data: reported already, not again
        has_secret = info.data.get("kubeconfig") is not None
        if "kubeconfig" in info.data and has_secret == (v.kubeconfig_path is not None):
            raise ValueError(
                "give the cluster's kubeconfig once: either existing.kubeconfig_path or the secret "
                f"{NAMESPACE}:kubeconfig (pulumi config set --secret), not both and not neither"
            )
        keys = [k for k in ("object_store_access_key_id", "object_store_secret_access_key") if k in info.data and info.data[k] is None]
        if v.object_store is not None and keys:
            raise ValueError(f"object_store needs its credentials as the stack secrets {', '.join(NAMESPACE + ':' + k for k in keys)}")
        return v

    @field_validator("outscale", "baremetal")
    @classmethod
    def _self_built(cls, v: Any, info: ValidationInfo) -> Any:
        name = info.field_name
        if v is not None:
            _only_for(name, (name,), info)
        if info.data.get("provider") != name:
            return v
        if v is None:
            what = "image_id and ssh_public_key" if name == "outscale" else "country and object_store (optional)"
            raise ValueError(f"is required for provider {name}: {what}")
        store = v.object_store if name == "baremetal" else True
        keys = [k for k in ("object_store_access_key_id", "object_store_secret_access_key") if k in info.data and info.data[k] is None]
        if store and keys:
            raise ValueError(f"object storage needs its credentials as the stack secrets {', '.join(NAMESPACE + ':' + k for k in keys)}")
        return v

    @field_validator("pools")
    @classmethod
    def _pools(cls, v: tuple[Pool, ...], info: ValidationInfo) -> tuple[Pool, ...]:
        problems = []
        plan = _ovh_plan(info.data.get("provider"), info.data.get("region"), info.data.get("ovh"))
        gpu = [p.name for p in v if plan == "standard" and _catalog.load().offer("ovh", p.flavor or "") is not None
               and _catalog.load().offer("ovh", p.flavor).is_gpu]
        if gpu:
            problems.append(f"GPU pool(s) {', '.join(gpu)} on an MKS Standard cluster, which has no GPU node pools "
                            "(ovh/public-cloud-roadmap#1107: GPUs are in Gravelines 1-AZ); use plan 'free' in GRA11")
        dupes = _repeated(p.name for p in v)
        if dupes:
            problems.append(f"pool names must be unique; repeated: {', '.join(dupes)}")
        if not any(p.role == "system" for p in v):
            problems.append("at least one pool needs role 'system': GPU pools are tainted, cluster services need somewhere to run")
        if info.data.get("provider") in SELF_BUILT_PROVIDERS:
            if sum(p.role == "system" for p in v) > 1:
                problems.append("a self-built cluster has one 'system' pool: its nodes are the RKE2 servers")
            dupes = _repeated(h.address for p in v for h in p.hosts)
            if dupes:
                problems.append(f"a host is listed twice; repeated address: {', '.join(dupes)}")
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @field_validator("platform")
    @classmethod
    def _slurm(cls, v: Platform, info: ValidationInfo) -> Platform:
        pools = info.data.get("pools")
        if pools is None:
            return v  # the pools are reported on their own
        provider = info.data.get("provider")
        block = {"ovh": info.data.get("ovh"), "scaleway": info.data.get("scaleway"), "outscale": info.data.get("outscale")}.get(provider)
        allow_list = tuple(getattr(block, "api_allowed_cidrs", ()) or ())
        # GPUs per node as the stack's validated offers say; a pool whose offer failed is reported on its own
        gpus = {}
        for p in pools:
            try:
                gpus[p.name] = _pool_gpus(provider, p)
            except (AssertionError, KeyError, TypeError):
                gpus[p.name] = 0
        problems = slurm_problems(v.slurm, provider, pools, gpus, allow_list)
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @field_validator("policy")
    @classmethod
    def _image_registry_allowed(cls, v: Policy, info: ValidationInfo) -> Policy:
        platform = info.data.get("platform")
        registry = platform.image_registry if platform else None
        if registry and not any(f"{registry}/".startswith(prefix) for prefix in v.allowed_registries):
            raise ValueError(f"allowed_registries does not admit platform.image_registry {registry!r}: "
                             f"add {registry + '/'!r}, or the admission policy refuses the cluster's own images")
        return v

    @field_validator("teams")
    @classmethod
    def _teams(cls, v: tuple[Team, ...]) -> tuple[Team, ...]:
        dupes = _repeated(t.name for t in v)
        if dupes:
            raise ValueError(f"team names must be unique; repeated: {', '.join(dupes)}")
        return v

    # -- derived views (computed, never stored) ----------------------------------------------
    def offer(self, pool: Pool) -> _catalog.Offer:
        """What a node of ``pool`` is: the catalog offer, or for an existing cluster what the
        stack says the nodes have (price unknown: the catalog does not sell it)."""
        if self.provider == "outscale":
            fgpu = _catalog.load().offer("outscale", pool.gpu_model) if pool.gpu_model else None
            return _catalog.Offer(
                provider="outscale",
                flavor=pool.flavor,
                gpu_model=fgpu.gpu_model if fgpu else None,
                gpu_count=(pool.gpus_per_node or 1) if fgpu else 0,
                gpu_memory_gib=fgpu.gpu_memory_gib if fgpu else None,
                vcpus=vm_type(pool.flavor)["vcores"],
                ram_gib=vm_type(pool.flavor)["ram_gib"],
                eur_per_hour=None,  # Outscale prices are not public in our sources
                regions=(self.region,),
                source=fgpu.source if fgpu else "osc_vm_types",
                as_of=fgpu.as_of if fgpu else None,
            )
        if self.provider in ("existing", "baremetal"):
            return _catalog.Offer(
                provider=self.provider,
                flavor=pool.flavor or self.provider,
                gpu_model=pool.gpu_model,
                gpu_count=pool.gpus_per_node or 0,
                gpu_memory_gib=None,
                vcpus=None,
                ram_gib=None,
                eur_per_hour=None,
                regions=None,
                source="stack configuration",
                as_of=None,
            )
        offer = _catalog.load().offer(self.provider, pool.flavor)
        assert offer is not None, "flavours are validated against the catalog"
        return offer

    def zone(self, pool: Pool) -> Optional[str]:
        """The zone a pool's nodes run in: its own, else the stack's default (Scaleway), else none."""
        if pool.availability_zone:
            return pool.availability_zone
        if self.provider == "scaleway":
            return self.scaleway.zone or self.region_facts.zones[0]
        return None

    @property
    def region_facts(self) -> _catalog.Region:
        assert self.provider in CATALOG_PROVIDERS, "existing clusters have no catalog region"
        region = _catalog.load().region(self.provider, self.region)
        assert region is not None
        return region

    def state_backend(self) -> Backend:
        """Where the stack's state goes: ``state.backend``, else a bucket ``<name>-pulumi-state`` on
        the stack's own S3 endpoint (an existing cluster's object store), in its storage region."""
        if self.state.backend is not None:
            return describe(self.state.backend, self.state.secrets_provider)
        own = self.existing if self.provider == "existing" else self.baremetal if self.provider == "baremetal" else None
        if self.provider in CATALOG_PROVIDERS:
            region = self.object_storage_region.lower()
            endpoint = s3_endpoint(self.provider, region)
        elif own is not None and own.object_store is not None:
            region, endpoint = own.object_store.region, own.object_store.endpoint
        else:
            return describe("", self.state.secrets_provider)  # nothing of its own: the hosted default
        backend = describe(s3_url(state_bucket(self.name), endpoint, region), self.state.secrets_provider)
        if backend.country is None and own is not None:
            backend = replace(backend, country=own.country)  # the operator's own store, where the cluster is
        return backend

    def policy_settings(self) -> Settings:
        """The policy rules' settings for this stack (``policy:``, and ``budget_enforced``)."""
        settings = self.policy.settings(budget_enforced=self.budget_enforced)
        return replace(settings, mirror=self.mirror.base) if self.mirror else settings

    @property
    def ovh_plan(self) -> Optional[str]:
        """The MKS plan: the stack's, else the first the region sells (catalog ``mks_plans``)."""
        return _ovh_plan(self.provider, self.region, self.ovh)

    @property
    def object_storage_region(self) -> str:
        return self.object_storage.region or self.region_facts.object_storage_region

    def bucket_name(self, bucket: Bucket) -> str:
        return f"{self.name}-{bucket.name}"


def _pool_gpus(provider: Optional[str], pool: Pool) -> int:
    """GPUs per node of a validated pool, before the whole stack exists (see StackConfig.offer)."""
    if provider in ("existing", "baremetal", "outscale"):
        return pool.gpus_per_node or (1 if provider == "outscale" and pool.gpu_model else 0)
    offer = _catalog.load().offer(provider, pool.flavor or "")
    return offer.gpu_count if offer is not None else 0
