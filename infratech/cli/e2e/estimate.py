"""What an e2e run costs in EUR: each pool's desired nodes x the catalog's price per node-hour x the
usual duration of the phases that hold resources (``up`` to ``teardown``). Prices and node counts
come from :func:`infratech.costs.stack_costs`, the figures `infratech plan` shows; a price the
catalog does not know stays unknown (never 0): the total is then the known part, a lower bound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ... import costs as _costs
from ...config import StackConfig
from .model import PHASES


def billable_minutes() -> float:
    return sum(p.usual_min for p in PHASES if p.billable)


@dataclass(frozen=True)
class Estimate:
    hours: float
    pools: tuple[dict[str, Any], ...]  # name, nodes, eur_per_hour_per_node, eur (None: unknown)
    eur_known: float
    unknown: tuple[str, ...]  # pools whose price the catalog does not know
    not_counted: str

    @property
    def minutes(self) -> int:
        return round(self.hours * 60)

    @property
    def complete(self) -> bool:
        return not self.unknown

    def words(self) -> str:
        total = f"{_costs.eur(self.eur_known)} EUR"
        if self.complete:
            return f"about {total} for {self.minutes} min"
        return f"at least {total} for {self.minutes} min; prices unknown for: {', '.join(self.unknown)}"

    def to_dict(self) -> dict[str, Any]:
        return {"currency": "EUR", "hours": self.hours, "basis": _costs.BASIS + "; desired nodes x usual duration",
                "pools": [dict(p) for p in self.pools], "eur_known": round(self.eur_known, 2),
                "complete": self.complete, "unknown": list(self.unknown), "not_counted": self.not_counted}


def estimate(cfg: StackConfig, hours: Optional[float] = None) -> Estimate:
    hours = billable_minutes() / 60 if hours is None else hours
    pools, known, unknown = [], 0.0, []
    for pool in _costs.stack_costs(cfg).pools:
        nodes = pool.nodes["desired"]
        rate = pool.eur_per_hour("desired")
        eur = None if rate is None else rate * hours
        if eur is None:
            unknown.append(pool.name)
        else:
            known += eur
        pools.append({"name": pool.name, "nodes": nodes, "eur_per_hour_per_node": pool.eur_per_hour_per_node,
                      "eur": None if eur is None else round(eur, 2), "price_source": pool.price_source})
    return Estimate(round(hours, 4), tuple(pools), known, tuple(unknown), _costs.NOT_COUNTED)
