"""What a stack costs in EUR, known before anything is created (comparing offers: ``compare``).

Pure functions over a validated :class:`~infratech.config.StackConfig` and the catalog: no Pulumi.
The figures are list prices (public, on demand, excl. VAT, per node) times node counts, per hour
and per month of ``catalog.HOURS_PER_MONTH`` (730 h). They are computed at the pools' min, desired
and max node counts because an autoscaled stack costs anything between the first and the last.

A price the catalog does not know stays unknown: it is never counted as zero and never estimated.
A total that leaves out an unknown price is the known part only, a lower bound, and says so
(``complete: false`` and the names of what is unknown). The budget is compared with the max-node
monthly total, the most the stack can cost; the ``budget`` policy rule judges it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from .. import catalog as _catalog

from ..config import Pool, StackConfig

SCENARIOS = ("min", "desired", "max")
Scenario = Literal["min", "desired", "max"]
BudgetState = Literal["none", "within", "exceeded", "incomplete"]

OBJECT_STORAGE = "object_storage"
BASIS = "public on-demand list prices per node, excl. VAT, from the catalog"
NOT_COUNTED = (
    "the Kubernetes control plane, network gateways, load balancers, block volumes and traffic "
    "are not in the catalog and not in these figures"
)


def eur(value: float) -> str:
    """Money for people: ``11242.0`` -> ``11,242.00``. Figures in data stay unrounded."""
    return f"{value:,.2f}"


def eur_rate(value: float) -> str:
    """A price per hour as precise as the catalog's (six decimals), at least cents: ``2.8`` ->
    ``2.80``, ``25.3308`` -> ``25.3308``, ``1.469916`` -> ``1.469916``."""
    text = f"{value:,.6f}".rstrip("0")
    decimals = len(text.partition(".")[2])
    return text + "0" * max(0, 2 - decimals)


# -- a stack's costs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolCost:
    """One pool: its price per node and what its nodes cost in each scenario."""

    name: str
    provider: str
    flavor: str
    gpu_model: Optional[str]
    gpus_per_node: int
    nodes: dict[str, int]  # scenario -> node count
    eur_per_hour_per_node: Optional[float]
    price_source: str  # the catalog source key (or what the stack says, for an existing cluster)
    price_as_of: Optional[str]  # the price's date; None when the price is unknown or undated
    note: Optional[str] = None

    def eur_per_hour(self, scenario: Scenario) -> Optional[float]:
        """None when the price is unknown, except with no node at all: zero nodes cost nothing."""
        count = self.nodes[scenario]
        if count == 0:
            return 0.0
        return None if self.eur_per_hour_per_node is None else self.eur_per_hour_per_node * count

    def eur_per_month(self, scenario: Scenario) -> Optional[float]:
        hourly = self.eur_per_hour(scenario)
        return None if hourly is None else hourly * _catalog.HOURS_PER_MONTH

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "flavor": self.flavor,
            "gpu_model": self.gpu_model,
            "gpus_per_node": self.gpus_per_node,
            "nodes": dict(self.nodes),
            "eur_per_hour_per_node": self.eur_per_hour_per_node,
            "price_source": self.price_source,
            "price_as_of": self.price_as_of,
            "eur_per_hour": {s: _hour(self.eur_per_hour(s)) for s in SCENARIOS},
            "eur_per_month": {s: _cents(self.eur_per_month(s)) for s in SCENARIOS},
            "note": self.note,
        }


@dataclass(frozen=True)
class ItemCost:
    """A cost that does not scale with nodes (object storage): a monthly figure, or None."""

    name: str
    eur_per_month: Optional[float]
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "eur_per_month": _cents(self.eur_per_month), "note": self.note}


@dataclass(frozen=True)
class Total:
    """The known part of a scenario's cost; ``complete`` only when nothing in it is unknown."""

    scenario: Scenario
    eur_per_hour: float
    eur_per_month: float
    unknown: tuple[str, ...]  # names of pools whose price is unknown (and that have nodes)
    unknown_other: tuple[str, ...]  # other items whose price is unknown (object_storage)

    @property
    def complete(self) -> bool:
        return not self.unknown and not self.unknown_other

    @property
    def unknown_names(self) -> tuple[str, ...]:
        return self.unknown + tuple(n.replace("_", " ") for n in self.unknown_other)

    def to_dict(self) -> dict[str, Any]:
        return {
            "eur_per_hour": _hour(self.eur_per_hour),
            "eur_per_month": _cents(self.eur_per_month),
            "complete": self.complete,
            "unknown": list(self.unknown),
            "unknown_other": list(self.unknown_other),
        }


@dataclass(frozen=True)
class Budget:
    """The stack's budget against its max-node monthly total (see :func:`budget`)."""

    eur_per_month: Optional[int]
    enforced: bool
    state: BudgetState
    max_eur_per_month: float  # the known part
    message: str

    @property
    def warning(self) -> Optional[str]:
        """What a deployment should warn about: an exceeded budget that is not enforced, or one
        that cannot be checked fully. An enforced exceeded budget is an error, not a warning."""
        if self.state == "incomplete" or (self.state == "exceeded" and not self.enforced):
            return self.message
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "eur_per_month": self.eur_per_month,
            "enforced": self.enforced,
            "state": self.state,
            "max_eur_per_month": _cents(self.max_eur_per_month),
            "message": self.message,
        }


@dataclass(frozen=True)
class StackCosts:
    pools: tuple[PoolCost, ...]
    items: tuple[ItemCost, ...]
    totals: dict[str, Total]
    budget: Budget

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, numbers, strings, None) for a stack output and the plan.
        Money is rounded to cents, prices per hour to the catalog's precision."""
        return {
            "currency": "EUR",
            "hours_per_month": _catalog.HOURS_PER_MONTH,
            "basis": BASIS,
            "pools": [p.to_dict() for p in self.pools],
            "other": [i.to_dict() for i in self.items],
            "totals": {s: self.totals[s].to_dict() for s in SCENARIOS},
            "not_counted": NOT_COUNTED,
            "budget": self.budget.to_dict(),
        }


def _cents(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 2)


def _hour(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 6)


def pool_cost(cfg: StackConfig, pool: Pool) -> PoolCost:
    offer = cfg.offer(pool)
    note = None
    if pool.monthly_billed and offer.eur_per_hour is not None:
        note = (
            f"monthly billed: priced here at the hourly list price x {_catalog.HOURS_PER_MONTH} h; "
            "the provider's monthly rate is not in the catalog"
        )
    return PoolCost(
        name=pool.name,
        provider=offer.provider,
        flavor=offer.flavor,  # an existing cluster's pool may name none; its offer says "existing"
        gpu_model=offer.gpu_model_id,
        gpus_per_node=offer.gpu_count,
        nodes={"min": pool.min_nodes, "desired": pool.desired_nodes, "max": pool.max_nodes},
        eur_per_hour_per_node=offer.eur_per_hour,
        price_source=offer.source,
        price_as_of=None if offer.eur_per_hour is None else offer.as_of,
        note=note,
    )


def object_storage_price(cfg: StackConfig) -> Optional[float]:
    """EUR per month of the stack's buckets. None: the catalog holds no object storage price (and
    storage is billed by use, which a plan cannot know). Summed into the totals once known."""
    return None


def _items(cfg: StackConfig) -> tuple[ItemCost, ...]:
    """The buckets the stack creates. A provider the catalog does not sell (an existing cluster)
    brings its own object store, which this stack does not create or pay for."""
    buckets = cfg.object_storage.buckets
    if not buckets or cfg.provider not in _catalog.load().providers():
        return ()
    names = ", ".join(b.name for b in buckets)
    return (ItemCost(OBJECT_STORAGE, object_storage_price(cfg), f"buckets {names}: no object storage price in the catalog; billed by use"),)


def _total(scenario: Scenario, pools: tuple[PoolCost, ...], items: tuple[ItemCost, ...]) -> Total:
    hourly = sum(p.eur_per_hour(scenario) or 0.0 for p in pools)
    monthly = sum(i.eur_per_month for i in items if i.eur_per_month is not None)
    return Total(
        scenario=scenario,
        eur_per_hour=hourly + monthly / _catalog.HOURS_PER_MONTH,
        eur_per_month=hourly * _catalog.HOURS_PER_MONTH + monthly,
        unknown=tuple(p.name for p in pools if p.eur_per_hour(scenario) is None),
        unknown_other=tuple(i.name for i in items if i.eur_per_month is None),
    )


def _drivers(pools: tuple[PoolCost, ...]) -> str:
    """The priced pools at max nodes, most expensive first: what to cut to fit a budget."""
    priced = sorted((p for p in pools if p.eur_per_month("max")), key=lambda p: -(p.eur_per_month("max") or 0.0))
    return ", ".join(
        f"{p.name} ({p.nodes['max']} x {p.flavor} at {eur_rate(p.eur_per_hour_per_node or 0.0)} EUR/h: "
        f"{eur(p.eur_per_month('max') or 0.0)} EUR/month)"
        for p in priced
    )


def budget(cfg: StackConfig, pools: tuple[PoolCost, ...], top: Total) -> Budget:
    """Compare the max-node monthly total with ``budget_eur_per_month``.

    ``exceeded``: the known part alone is over it, so the whole certainly is. ``incomplete``: the
    known part fits but some prices are unknown, so it cannot be checked fully. ``within``: every
    price is known and the total fits. ``none``: no budget set.
    """
    limit, enforced = cfg.budget_eur_per_month, cfg.budget_enforced
    known = top.eur_per_month
    at_least = "" if top.complete else "at least "
    figure = f"max-node cost {at_least}{eur(known)} EUR/month"
    unknown = f"; prices unknown for: {', '.join(top.unknown_names)}" if not top.complete else ""
    if limit is None:
        return Budget(None, enforced, "none", known, f"no budget set; {figure}{unknown}")
    if round(known, 2) > limit:
        drivers = _drivers(pools)
        message = (
            f"{figure} exceeds budget_eur_per_month {limit:,} EUR/month"
            + (f"; driven by {drivers}" if drivers else "")
            + unknown
        )
        return Budget(limit, enforced, "exceeded", known, message)
    if not top.complete:
        message = (
            f"{figure}, within budget_eur_per_month {limit:,} EUR/month for the known part, "
            f"but cannot be checked fully{unknown}"
        )
        return Budget(limit, enforced, "incomplete", known, message)
    return Budget(limit, enforced, "within", known, f"{figure}, within budget_eur_per_month {limit:,} EUR/month")


def stack_costs(cfg: StackConfig) -> StackCosts:
    pools = tuple(pool_cost(cfg, p) for p in cfg.pools)
    items = _items(cfg)
    totals = {s: _total(s, pools, items) for s in SCENARIOS}
    return StackCosts(pools=pools, items=items, totals=totals, budget=budget(cfg, pools, totals["max"]))
