"""``infratech cost compare``: every catalog offer that meets a GPU need, cheapest total first.

A need names a GPU model (whole words: ``H100`` matches ``h100-80gb`` and ``h100-sxm``, not
``h200``) or a minimum memory per GPU, GPUs per node, nodes and hours, optionally a provider and
a region. total = EUR per hour per node x nodes x hours; an unknown price is never ranked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from .. import catalog as _catalog
from . import _cents


class NeedError(ValueError):
    """A need that cannot be met as asked: ``field`` names the need's field, the message what is allowed."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(message)


@dataclass(frozen=True)
class Need:
    """What a user needs. An offer qualifies when its GPU model matches, its GPU memory is at
    least ``min_gpu_memory_gib`` (unknown memory does not qualify), it has **at least**
    ``gpus_per_node`` GPUs per node (a bigger node runs the same work, and its price shows what
    the extra GPUs cost), and it is sold in ``region`` (a region or zone name) when one is given.
    """

    gpu_model: Optional[str] = None
    min_gpu_memory_gib: Optional[float] = None
    gpus_per_node: int = 1
    nodes: int = 1
    hours: float = _catalog.HOURS_PER_MONTH
    provider: Optional[str] = None
    region: Optional[str] = None


@dataclass(frozen=True)
class Match:
    """An offer that meets a need, with what ``need.nodes`` of it cost for ``need.hours``."""

    offer: _catalog.Offer
    facts: Optional[_catalog.ProviderFacts]
    total_eur: Optional[float]

    def to_dict(self) -> dict[str, Any]:
        o, f = self.offer, self.facts
        return {
            "provider": o.provider,
            "flavor": o.flavor,
            "gpus_per_node": o.gpu_count,
            "gpu_model": o.gpu_model,
            "gpu_model_id": o.gpu_model_id,
            "gpu_memory_gib": o.gpu_memory_gib,
            "sold_in": None if o.regions is None else list(o.regions),
            "eur_per_hour_per_node": o.eur_per_hour,
            "total_eur": _cents(self.total_eur),
            "price_source": o.source,
            "price_as_of": None if o.eur_per_hour is None else o.as_of,
            "jurisdiction": None if f is None else f.jurisdiction,
            "company": None if f is None else f.company,
            "secnumcloud": None if f is None else f.secnumcloud,
            "secnumcloud_note": None if f is None else f.secnumcloud_note,
            "managed_pool": o.managed_pool,
            "managed_pool_source": o.managed_pool_source,
        }


def _tokens(text: str) -> list[str]:
    return _catalog.gpu_model_id(text).split("-")


def model_matches(query: str, model_id: str) -> bool:
    """``H100`` matches ``h100``, ``h100-80gb``, ``h100-pcie``, ``h100-sxm``; ``sxm`` matches every
    SXM model. Matching is by whole words of the model id (case-insensitive, ``NVIDIA`` ignored),
    so ``L4`` does not match ``l40s``."""
    want, have = _tokens(query), model_id.split("-")
    return bool(want) and any(have[i : i + len(want)] == want for i in range(len(have) - len(want) + 1))


def _check(need: Need, cat: _catalog.Catalog) -> None:
    if need.gpu_model is None and need.min_gpu_memory_gib is None:
        raise NeedError("gpu_model", "is needed, or a minimum GPU memory: the need names the GPUs")
    if need.gpu_model is not None:
        models = cat.gpu_models()
        if not any(model_matches(need.gpu_model, m) for m in models):
            raise NeedError("gpu_model", f"{need.gpu_model!r} matches no GPU model of the catalog; allowed: {', '.join(models)}")
    if need.min_gpu_memory_gib is not None and not (need.min_gpu_memory_gib > 0 and math.isfinite(need.min_gpu_memory_gib)):
        raise NeedError("min_gpu_memory_gib", f"must be a number of GiB above 0 (given: {need.min_gpu_memory_gib:g})")
    for name in ("gpus_per_node", "nodes"):
        value = getattr(need, name)
        if value < 1:
            raise NeedError(name, f"must be a whole number >= 1 (given: {value})")
    if not (need.hours > 0 and math.isfinite(need.hours)):
        raise NeedError("hours", f"must be a number of hours above 0 (given: {need.hours:g})")
    if need.provider is not None and need.provider not in cat.providers():
        raise NeedError("provider", f"{need.provider!r} is not a provider of the catalog; allowed: {', '.join(cat.providers())}")
    if need.region is not None:
        providers = [need.provider] if need.provider else cat.providers()
        known = sorted({loc for p in providers for r in cat.regions(p).values() for loc in r.locations})
        if need.region not in known:
            raise NeedError("region", f"{need.region!r} is not a region or zone of {' or '.join(providers)}; allowed: {', '.join(known)}")


def _sold_where_needed(offer: _catalog.Offer, region: Optional[str], cat: _catalog.Catalog) -> bool:
    if region is None:
        return True
    if cat.location(offer.provider, region) is None:
        return False  # another provider's region
    own = cat.region(offer.provider, region)
    return offer.sold_in_region(own) if own is not None else offer.sold_in(region)


def qualifies(offer: _catalog.Offer, need: Need, cat: _catalog.Catalog) -> bool:
    """The rule of :class:`Need`, for one offer."""
    if not offer.is_gpu or offer.gpu_count < need.gpus_per_node:
        return False
    if need.provider is not None and offer.provider != need.provider:
        return False
    if need.gpu_model is not None and not model_matches(need.gpu_model, offer.gpu_model_id or ""):
        return False
    if need.min_gpu_memory_gib is not None and (offer.gpu_memory_gib is None or offer.gpu_memory_gib < need.min_gpu_memory_gib):
        return False
    return _sold_where_needed(offer, need.region, cat)


def compare(need: Need, cat: Optional[_catalog.Catalog] = None) -> list[Match]:
    """Every catalog offer that meets ``need``, cheapest total first, unknown prices last.

    total = EUR per hour per node x nodes x hours. An offer whose price is unknown is listed after
    every priced one (by provider and flavour), never ranked as cheap. Raises :class:`NeedError`.
    """
    cat = cat or _catalog.load()
    _check(need, cat)
    matches = [
        Match(
            offer=o,
            facts=cat.provider_facts(o.provider),
            total_eur=None if o.eur_per_hour is None else o.eur_per_hour * need.nodes * need.hours,
        )
        for o in cat.offers()
        if qualifies(o, need, cat)
    ]
    return sorted(
        matches,
        key=lambda m: (m.total_eur is None, m.total_eur or 0.0, m.offer.provider, m.offer.gpu_count, m.offer.flavor),
    )
