"""The catalog of flavours (instance types) and regions of each provider, with EUR prices.

Facts live in ``catalog.yaml`` beside this module; every offer names its source and date. A price
that is not known stays ``None`` and is reported as unknown by the cost code, never estimated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Optional

import yaml

HOURS_PER_MONTH = 730  # the convention providers use for monthly list prices (8760 h / 12)
SECNUMCLOUD_STATUSES = ("qualified", "not_qualified", "unverified")
MANAGED_POOL_STATUSES = ("supported", "unverified")


def gpu_model_id(gpu_model: str) -> str:
    """A label-safe identifier for a GPU model: ``NVIDIA H100 80GB`` -> ``h100-80gb``."""
    name = re.sub(r"^nvidia\s+", "", gpu_model.strip(), flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass(frozen=True)
class Region:
    provider: str
    name: str
    country: str
    object_storage_region: str
    kubernetes: bool
    city: Optional[str] = None
    zones: tuple[str, ...] = ()
    mks_plans: tuple[str, ...] = ()  # OVHcloud: the MKS plans sold in the region
    # where a provider's SecNumCloud status differs by region (Outscale): the region's own status
    # (SECNUMCLOUD_STATUSES) and its source; None: the provider's status applies
    secnumcloud: Optional[str] = None
    secnumcloud_source: Optional[str] = None

    @property
    def locations(self) -> tuple[str, ...]:
        """The region's own name and its zones: where an offer of this region may be listed."""
        return (self.name, *self.zones)


@dataclass(frozen=True)
class Offer:
    provider: str
    flavor: str
    gpu_model: Optional[str]
    gpu_count: int
    gpu_memory_gib: Optional[float]
    vcpus: Optional[int]
    ram_gib: Optional[float]
    eur_per_hour: Optional[float]
    regions: Optional[tuple[str, ...]]
    source: str
    as_of: Optional[str]
    # whether the flavour is known to work as a managed-Kubernetes node pool (MANAGED_POOL_STATUSES)
    # and the source that says so; None: not recorded (general-purpose flavours, other providers)
    managed_pool: Optional[str] = None
    managed_pool_source: Optional[str] = None

    @property
    def is_gpu(self) -> bool:
        return self.gpu_count > 0

    @property
    def gpu_model_id(self) -> Optional[str]:
        return gpu_model_id(self.gpu_model) if self.gpu_model else None

    @property
    def eur_per_month(self) -> Optional[float]:
        return None if self.eur_per_hour is None else round(self.eur_per_hour * HOURS_PER_MONTH, 2)

    def sold_in(self, location: str) -> bool:
        """Sold in this region or zone (as the source lists it; see ``Catalog.flavors_in``)."""
        return self.regions is None or location in self.regions

    def sold_in_region(self, region: "Region") -> bool:
        """Sold in the region or in any of its zones."""
        return self.regions is None or any(loc in self.regions for loc in region.locations)


@dataclass(frozen=True)
class NodeStart:
    """How long a provider takes to add a GPU node (catalog ``provisioning.gpu_node_start``), in minutes."""

    provider: str
    node_ready_minutes: int  # scale-up request -> node Ready, the worst case the sources give
    typical_minutes: int
    gpu_ready_minutes: int  # node Ready -> GPUs allocatable (driver and toolkit containers)
    sources: tuple[str, ...]
    as_of: Optional[str]

    @property
    def minutes(self) -> int:
        """Scale-up request -> a pod asking for GPUs can start on the new node."""
        return self.node_ready_minutes + self.gpu_ready_minutes


@dataclass(frozen=True)
class ProviderFacts:
    """Who sells a provider's offers and under which law: what a sovereignty review asks first.

    ``secnumcloud`` is the status of the offers in this catalog (see ``SECNUMCLOUD_STATUSES``),
    not of everything the company sells; ``secnumcloud_note`` says what the sources say.
    """

    provider: str
    title: str
    company: str
    country: str  # ISO 3166 code of the country whose law the company answers to
    parent: Optional[str]
    secnumcloud: str
    secnumcloud_note: str
    source: str
    as_of: Optional[str]

    @property
    def jurisdiction(self) -> str:
        """``FR`` or ``FR (Iliad group)``: the country, with the parent group where one is known."""
        return self.country if self.parent is None else f"{self.country} ({self.parent})"


@dataclass(frozen=True)
class FgpuHost:
    """The limits of a VM that an Outscale flexible GPU model attaches to."""

    model: str
    max_vcores: int
    max_ram_gib: float
    generations: tuple[str, ...]
    source: str


class Catalog:
    """Read-only view of ``catalog.yaml``."""

    def __init__(self, data: dict):
        self.sources: dict[str, str] = dict(data["sources"])
        self._regions: dict[str, dict[str, Region]] = {
            provider: {
                name: Region(
                    provider=provider,
                    name=name,
                    country=facts["country"],
                    object_storage_region=facts["object_storage_region"],
                    kubernetes=bool(facts.get("kubernetes", False)),
                    city=facts.get("city"),
                    zones=tuple(facts.get("zones", ())),
                    mks_plans=tuple(facts.get("mks_plans", ())),
                    secnumcloud=facts.get("secnumcloud"),
                    secnumcloud_source=facts.get("secnumcloud_source"),
                )
                for name, facts in regions.items()
            }
            for provider, regions in data["regions"].items()
        }
        self._offers: dict[tuple[str, str], Offer] = {}
        for rec in data["offers"]:
            pool = rec.get("managed_pool") or {}
            offer = Offer(
                provider=rec["provider"],
                flavor=rec["flavor"],
                gpu_model=rec["gpu_model"],
                gpu_count=int(rec["gpu_count"]),
                gpu_memory_gib=rec["gpu_memory_gib"],
                vcpus=rec["vcpus"],
                ram_gib=rec["ram_gib"],
                eur_per_hour=rec["eur_per_hour"],
                regions=None if rec["regions"] is None else tuple(rec["regions"]),
                source=rec["source"],
                as_of=None if rec["as_of"] is None else str(rec["as_of"]),
                managed_pool=pool.get("status"),
                managed_pool_source=pool.get("source"),
            )
            key = (offer.provider, offer.flavor)
            if offer.managed_pool is not None and offer.managed_pool not in MANAGED_POOL_STATUSES:
                raise ValueError(f"catalog.yaml: offer {key} managed_pool.status is {offer.managed_pool!r}; "
                                 f"allowed: {', '.join(MANAGED_POOL_STATUSES)}")
            if offer.managed_pool is not None and offer.managed_pool_source not in self.sources:
                raise ValueError(f"catalog.yaml: offer {key} managed_pool names unknown source {offer.managed_pool_source!r}")
            if key in self._offers:
                raise ValueError(f"catalog.yaml: duplicate offer {key}")
            if offer.source not in self.sources and " " not in offer.source:
                raise ValueError(f"catalog.yaml: offer {key} names unknown source {offer.source!r}")
            self._offers[key] = offer
        self._provider_facts = {name: self._read_provider(name, rec) for name, rec in (data.get("providers") or {}).items()}
        missing = sorted({o.provider for o in self._offers.values()} - set(self._provider_facts))
        if missing:
            raise ValueError(f"catalog.yaml: offers of {', '.join(missing)} but no entry under 'providers' (who sells, under which law)")
        self._node_start = _read_node_start(data.get("provisioning") or {})
        for region in (r for regions in self._regions.values() for r in regions.values()):
            if region.secnumcloud is not None and (region.secnumcloud not in SECNUMCLOUD_STATUSES
                                                   or region.secnumcloud_source not in self.sources):
                raise ValueError(f"catalog.yaml: regions.{region.provider}.{region.name}: secnumcloud must be one of "
                                 f"{', '.join(SECNUMCLOUD_STATUSES)} with a known secnumcloud_source")
        fgpu = data.get("fgpu") or {}
        self.fgpu_per_vm: int = int(fgpu.get("fgpu_per_vm", 1))
        self._fgpu_hosts = {
            model: FgpuHost(model, int(f["max_vcores"]), float(f["max_ram_gib"]), tuple(f["generations"]), f["source"])
            for model, f in (fgpu.get("models") or {}).items()
        }

    def _read_provider(self, name: str, rec: dict) -> ProviderFacts:
        facts = ProviderFacts(
            provider=name,
            title=rec["title"],
            company=rec["company"],
            country=rec["country"],
            parent=rec.get("parent"),
            secnumcloud=rec["secnumcloud"],
            secnumcloud_note=rec["secnumcloud_note"],
            source=rec["source"],
            as_of=None if rec.get("as_of") is None else str(rec["as_of"]),
        )
        if facts.secnumcloud not in SECNUMCLOUD_STATUSES:
            raise ValueError(
                f"catalog.yaml: providers.{name}.secnumcloud is {facts.secnumcloud!r}; allowed: {', '.join(SECNUMCLOUD_STATUSES)}"
            )
        if facts.source not in self.sources:
            raise ValueError(f"catalog.yaml: providers.{name} names unknown source {facts.source!r}")
        return facts

    # -- providers and regions -------------------------------------------------------------
    def providers(self) -> list[str]:
        return sorted(self._regions)

    def provider_facts(self, provider: str) -> Optional[ProviderFacts]:
        """Company, jurisdiction and SecNumCloud status; None for a provider the catalog does not sell."""
        return self._provider_facts.get(provider)

    def regions(self, provider: str) -> dict[str, Region]:
        return dict(self._regions.get(provider, {}))

    def region(self, provider: str, name: str) -> Optional[Region]:
        return self._regions.get(provider, {}).get(name)

    def location(self, provider: str, name: str) -> Optional[Region]:
        """The region a region or zone name belongs to (``fr-par-2`` -> ``fr-par``)."""
        for region in self._regions.get(provider, {}).values():
            if name in region.locations:
                return region
        return None

    # -- offers ----------------------------------------------------------------------------
    def offers(self, provider: Optional[str] = None) -> list[Offer]:
        return [o for o in self._offers.values() if provider is None or o.provider == provider]

    def offer(self, provider: str, flavor: str) -> Optional[Offer]:
        return self._offers.get((provider, flavor))

    def flavors_in(self, provider: str, location: str, gpu_only: bool = False) -> list[str]:
        """Flavours of ``provider`` sold in ``location``, sorted, for error messages and listings.

        A zone gives what is sold in that zone; a region gives what is sold in it or any of its zones.
        """
        region = self.region(provider, location)

        def sold(o: Offer) -> bool:
            return o.sold_in_region(region) if region is not None else o.sold_in(location)

        return sorted(o.flavor for o in self.offers(provider) if sold(o) and (o.is_gpu or not gpu_only))

    def gpu_models(self, provider: Optional[str] = None) -> list[str]:
        return sorted({o.gpu_model_id for o in self.offers(provider) if o.is_gpu})

    # -- provisioning ------------------------------------------------------------------------
    def fgpu_host(self, model: str) -> Optional["FgpuHost"]:
        """What a VM must be to take the Outscale flexible GPU ``model``; None if not recorded."""
        return self._fgpu_hosts.get(model)

    def node_start(self, provider: str) -> Optional[NodeStart]:
        """How long ``provider`` takes to add a GPU node; None where the catalog has no figure."""
        return self._node_start.get(provider)

    def node_start_providers(self) -> list[str]:
        return sorted(self._node_start)


def _read_node_start(section: dict) -> dict[str, NodeStart]:
    sources = section.get("sources") or {}
    out = {}
    for provider, rec in (section.get("gpu_node_start") or {}).items():
        where = f"catalog.yaml: provisioning.gpu_node_start.{provider}"
        for key in ("node_ready_minutes", "typical_minutes", "gpu_ready_minutes"):
            value = rec.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{where}.{key} is {value!r}; allowed: a whole number of minutes >= 0")
        unknown = [s for s in rec.get("sources") or () if s not in sources]
        if not rec.get("sources") or unknown:
            raise ValueError(f"{where}.sources must name keys of provisioning.sources; unknown: {unknown or 'none given'}")
        out[provider] = NodeStart(
            provider=provider,
            node_ready_minutes=rec["node_ready_minutes"],
            typical_minutes=rec["typical_minutes"],
            gpu_ready_minutes=rec["gpu_ready_minutes"],
            sources=tuple(rec["sources"]),
            as_of=None if rec.get("as_of") is None else str(rec["as_of"]),
        )
    return out


@lru_cache(maxsize=1)
def load() -> Catalog:
    text = resources.files(__package__).joinpath("catalog.yaml").read_text(encoding="utf-8")
    return Catalog(yaml.safe_load(text))
