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

    @property
    def is_gpu(self) -> bool:
        return self.gpu_count > 0

    @property
    def gpu_model_id(self) -> Optional[str]:
        return gpu_model_id(self.gpu_model) if self.gpu_model else None

    @property
    def eur_per_month(self) -> Optional[float]:
        return None if self.eur_per_hour is None else round(self.eur_per_hour * HOURS_PER_MONTH, 2)

    def sold_in(self, region: str) -> bool:
        return self.regions is None or region in self.regions


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
                )
                for name, facts in regions.items()
            }
            for provider, regions in data["regions"].items()
        }
        self._offers: dict[tuple[str, str], Offer] = {}
        for rec in data["offers"]:
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
            )
            key = (offer.provider, offer.flavor)
            if key in self._offers:
                raise ValueError(f"catalog.yaml: duplicate offer {key}")
            if offer.source not in self.sources and " " not in offer.source:
                raise ValueError(f"catalog.yaml: offer {key} names unknown source {offer.source!r}")
            self._offers[key] = offer

    # -- providers and regions -------------------------------------------------------------
    def providers(self) -> list[str]:
        return sorted(self._regions)

    def regions(self, provider: str) -> dict[str, Region]:
        return dict(self._regions.get(provider, {}))

    def region(self, provider: str, name: str) -> Optional[Region]:
        return self._regions.get(provider, {}).get(name)

    # -- offers ----------------------------------------------------------------------------
    def offers(self, provider: Optional[str] = None) -> list[Offer]:
        return [o for o in self._offers.values() if provider is None or o.provider == provider]

    def offer(self, provider: str, flavor: str) -> Optional[Offer]:
        return self._offers.get((provider, flavor))

    def flavors_in(self, provider: str, region: str, gpu_only: bool = False) -> list[str]:
        """Flavours of ``provider`` sold in ``region``, sorted, for error messages and listings."""
        return sorted(
            o.flavor
            for o in self.offers(provider)
            if o.sold_in(region) and (o.is_gpu or not gpu_only)
        )

    def gpu_models(self, provider: Optional[str] = None) -> list[str]:
        return sorted({o.gpu_model_id for o in self.offers(provider) if o.is_gpu})


@lru_cache(maxsize=1)
def load() -> Catalog:
    text = resources.files(__package__).joinpath("catalog.yaml").read_text(encoding="utf-8")
    return Catalog(yaml.safe_load(text))
