"""Costs in EUR before anything is created: stack figures, budget states, offer comparison, the
`cost compare` command, the plan's cost section and the providers' sovereignty facts.

Every expected figure is computed by hand in the comment above it, from the catalog prices.
"""

from __future__ import annotations

import copy
import json
import logging
from importlib import resources

import pytest
import yaml

from infratech import catalog, cli, config, costs, policy
from infratech.costs import compare
from infratech.cli.plan import record, report
from infratech.cli.plan.runtime import Recording

# The default stack's pools (stacks/Pulumi.ovh-gra11.yaml), written out so the arithmetic below
# does not move when the example stack is edited.
POOLS = [
    {"name": "system", "flavor": "b3-16", "role": "system", "min_nodes": 2, "desired_nodes": 3, "max_nodes": 3},
    {"name": "h100", "flavor": "h100-380", "role": "training", "min_nodes": 0, "desired_nodes": 2, "max_nodes": 4},
    {"name": "l40s", "flavor": "l40s-90", "role": "inference", "min_nodes": 1, "desired_nodes": 1, "max_nodes": 3},
]


def _cfg(**changes) -> config.StackConfig:
    raw = {"provider": "ovh", "region": "GRA11", "pools": copy.deepcopy(POOLS), "budget_eur_per_month": 20000}
    raw.update(changes)
    return config.parse(raw, "costs-test")


def _catalog_data() -> dict:
    return yaml.safe_load(resources.files("infratech").joinpath("catalog.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def priced_system(monkeypatch):
    """A catalog in which b3-16 has a price, so that a stack can be fully priced. 0.05 EUR/h is a
    test figure, not a fact: the real catalog does not know that price."""
    data = _catalog_data()
    for rec in data["offers"]:
        if rec["provider"] == "ovh" and rec["flavor"] == "b3-16":
            rec["eur_per_hour"] = 0.05
    fixed = catalog.Catalog(data)
    monkeypatch.setattr(catalog, "load", lambda: fixed)
    return fixed


# -- a stack's costs ----------------------------------------------------------------------------


def test_default_pools_cost_what_hand_arithmetic_says():
    c = costs.stack_costs(_cfg())
    by_name = {p.name: p for p in c.pools}
    # h100: 2.80 EUR/h per node x 0/2/4 nodes = 0 / 5.60 / 11.20 EUR/h; x 730 h = 0 / 4088 / 8176
    h100 = by_name["h100"]
    assert h100.eur_per_hour_per_node == 2.80
    assert (h100.price_source, h100.price_as_of) == ("ovh_catalog", "2025-01-27")
    assert [h100.eur_per_hour(s) for s in costs.SCENARIOS] == pytest.approx([0.0, 5.60, 11.20])
    assert [h100.eur_per_month(s) for s in costs.SCENARIOS] == pytest.approx([0.0, 4088.0, 8176.0])
    # l40s: 1.40 x 1/1/3 = 1.40 / 1.40 / 4.20 EUR/h; x 730 = 1022 / 1022 / 3066
    l40s = by_name["l40s"]
    assert [l40s.eur_per_hour(s) for s in costs.SCENARIOS] == pytest.approx([1.40, 1.40, 4.20])
    assert [l40s.eur_per_month(s) for s in costs.SCENARIOS] == pytest.approx([1022.0, 1022.0, 3066.0])
    # system: b3-16 has no price in the catalog, so 2/3/3 nodes cost an unknown amount
    assert [by_name["system"].eur_per_month(s) for s in costs.SCENARIOS] == [None, None, None]
    # totals, known part: min 0 + 1.40 = 1.40 EUR/h, 1022 EUR/month; desired 5.60 + 1.40 = 7.00, 5110;
    # max 11.20 + 4.20 = 15.40, 11242
    expected = {"min": (1.40, 1022.0), "desired": (7.00, 5110.0), "max": (15.40, 11242.0)}
    for scenario, (hourly, monthly) in expected.items():
        total = c.totals[scenario]
        assert (total.eur_per_hour, total.eur_per_month) == pytest.approx((hourly, monthly)), scenario
        assert not total.complete and total.unknown == ("system",) and total.unknown_other == ("object_storage",)


def test_costs_as_plain_data():
    data = costs.stack_costs(_cfg()).to_dict()
    assert json.loads(json.dumps(data)) == data, "plain JSON data, nothing else"
    assert data["currency"] == "EUR" and data["hours_per_month"] == 730
    h100 = next(p for p in data["pools"] if p["name"] == "h100")
    assert h100["nodes"] == {"min": 0, "desired": 2, "max": 4}
    assert h100["eur_per_month"] == {"min": 0.0, "desired": 4088.0, "max": 8176.0}
    assert h100["eur_per_hour"] == {"min": 0.0, "desired": 5.6, "max": 11.2}
    assert data["totals"]["max"] == {
        "eur_per_hour": 15.4, "eur_per_month": 11242.0, "complete": False, "unknown": ["system"], "unknown_other": ["object_storage"],
    }
    assert data["other"] == [{"name": "object_storage", "eur_per_month": None, "note": data["other"][0]["note"]}]
    assert data["budget"]["state"] == "incomplete" and data["budget"]["max_eur_per_month"] == 11242.0


def test_an_unknown_price_is_never_counted_as_zero():
    cfg = _cfg(pools=[POOLS[0]], object_storage={"buckets": []})
    c = costs.stack_costs(cfg)
    data = c.to_dict()
    assert data["pools"][0]["eur_per_month"] == {"min": None, "desired": None, "max": None}
    assert data["pools"][0]["price_as_of"] is None
    for scenario in costs.SCENARIOS:
        total = data["totals"][scenario]
        assert total["complete"] is False and total["unknown"] == ["system"]
    # the known part is zero, yet the budget is not declared met: it cannot be checked
    assert c.budget.state == "incomplete" and "cannot be checked fully" in c.budget.message


def test_a_pool_at_zero_nodes_costs_nothing_even_unpriced():
    """Zero nodes cost zero whatever the price: no estimate is made, no node is paid for."""
    pool = costs.PoolCost("gpu", "ovh", "x", None, 1, {"min": 0, "desired": 1, "max": 2}, None, "test", None)
    assert pool.eur_per_month("min") == 0.0
    assert pool.eur_per_month("desired") is None and pool.eur_per_month("max") is None
    totals = costs._total("min", (pool,), ()), costs._total("max", (pool,), ())
    assert totals[0].complete and not totals[1].complete and totals[1].unknown == ("gpu",)


def test_object_storage_price_is_summed_once_known(monkeypatch, priced_system):
    # fully priced: system 0.05 x 3 = 0.15 EUR/h at max, + 15.40 = 15.55 EUR/h; x 730 = 11351.50
    cfg = _cfg(object_storage={"buckets": []})
    top = costs.stack_costs(cfg).totals["max"]
    assert top.complete and top.eur_per_month == pytest.approx(11351.50)
    # with buckets and a (test) storage price of 100 EUR/month: 11451.50, and complete
    monkeypatch.setattr(costs, "object_storage_price", lambda cfg: 100.0)
    top = costs.stack_costs(_cfg()).totals["max"]
    assert top.complete and top.eur_per_month == pytest.approx(11451.50)
    assert top.eur_per_hour == pytest.approx(15.55 + 100.0 / 730)


def test_monthly_billed_pools_say_how_they_are_priced():
    pools = copy.deepcopy(POOLS)
    pools[1]["monthly_billed"] = True
    h100 = costs.stack_costs(_cfg(pools=pools)).pools[1]
    assert h100.eur_per_month("max") == pytest.approx(8176.0)
    assert "monthly" in h100.note and "730" in h100.note


# -- budget -------------------------------------------------------------------------------------


def _budget_verdict(cfg: config.StackConfig) -> policy.Verdict:
    """The budget rule's verdict on the stack's cost output, at the level the stack sets: the one
    place a budget is enforced (budget_enforced makes the rule mandatory)."""
    stack = policy.Stack((), {"costs": costs.stack_costs(cfg).to_dict()}, cfg.policy_settings())
    return next(v for v in policy.evaluate(stack) if v.rule.id == "budget")


def test_no_budget():
    b = costs.stack_costs(_cfg(budget_eur_per_month=None)).budget
    assert b.state == "none" and b.warning is None and "no budget" in b.message
    assert _budget_verdict(_cfg(budget_eur_per_month=None, budget_enforced=True)).status == "pass"


def test_budget_within_when_every_price_is_known(priced_system):
    # max: 11351.50 EUR/month (see above) <= 12000
    b = costs.stack_costs(_cfg(object_storage={"buckets": []}, budget_eur_per_month=12000)).budget
    assert b.state == "within" and b.warning is None
    assert "11,351.50" in b.message and "12,000" in b.message


def test_budget_incomplete_when_the_known_part_fits():
    # known max 11242 <= 20000, but b3-16 and object storage have no price
    b = costs.stack_costs(_cfg()).budget
    assert b.state == "incomplete"
    assert b.warning == b.message
    assert "at least 11,242.00" in b.message and "system" in b.message and "object storage" in b.message
    # enforced: still a warning, not an error, since nobody knows the missing prices
    assert _budget_verdict(_cfg(budget_enforced=True)).status == "pass"


def test_budget_exceeded_warns_when_not_enforced():
    # the known part alone, 11242, is over 10000: certainly exceeded
    cfg = _cfg(budget_eur_per_month=10000)
    b = costs.stack_costs(cfg).budget
    assert b.state == "exceeded" and b.warning is not None
    assert "11,242.00" in b.message and "10,000" in b.message
    assert b.message.index("h100") < b.message.index("l40s"), "the most expensive pool first"
    verdict = _budget_verdict(cfg)
    assert verdict.status == "warn" and not verdict.blocks, "not enforced: the stack is accepted"


def test_budget_exceeded_and_enforced_refuses_the_stack(project, tmp_path, capsys, monkeypatch):
    verdict = _budget_verdict(_cfg(budget_eur_per_month=10000, budget_enforced=True))
    assert verdict.status == "FAIL" and verdict.blocks
    [problem] = verdict.violations
    assert "11,242.00 EUR/month" in problem and "budget_eur_per_month 10,000" in problem
    assert "h100 (4 x h100-380 at 2.80 EUR/h: 8,176.00 EUR/month)" in problem
    assert "l40s (3 x l40s-90 at 1.40 EUR/h: 3,066.00 EUR/month)" in problem
    # through the plan: refused with the policy's exit code, the rule named, nothing deployed
    stack_dir = tmp_path / "stacks"
    stack_dir.mkdir()
    text = project.stack_file("ovh-gra11").read_text(encoding="utf-8")
    text = text.replace("infratech:budget_eur_per_month: 20000", "infratech:budget_eur_per_month: 10000\n  infratech:budget_enforced: true")
    (stack_dir / "Pulumi.ovh-gra11.yaml").write_text(text, encoding="utf-8")
    moved = type(project)(root=project.root, name=project.name, stack_dir=stack_dir, main=project.main)
    monkeypatch.setattr("infratech.cli.app.find_project", lambda start=None: moved)
    assert cli.main(["plan", "ovh-gra11", "--quiet", "--out", str(tmp_path / "out")]) == cli.EXIT_POLICY
    assert "mandatory policy rule(s) violated: budget" in capsys.readouterr().err


def test_budget_equal_to_the_known_cost_is_not_exceeded():
    assert costs.stack_costs(_cfg(budget_eur_per_month=11242)).budget.state == "incomplete"
    assert costs.stack_costs(_cfg(budget_eur_per_month=11241)).budget.state == "exceeded"


# -- comparing offers ---------------------------------------------------------------------------

SMALL = {
    "sources": {"s": "test source"},
    "regions": {
        "alpha": {"R1": {"country": "FR", "object_storage_region": "R1", "kubernetes": True}},
        "beta": {"b": {"country": "FR", "object_storage_region": "b", "kubernetes": True, "zones": ["b-1", "b-2"]}},
    },
    "offers": [
        {"provider": "alpha", "flavor": "sxm8", "gpu_model": "NVIDIA H100 SXM", "gpu_count": 8, "gpu_memory_gib": 80, "vcpus": 1, "ram_gib": 1,
         "eur_per_hour": 20.0, "regions": ["R1"], "source": "s", "as_of": "2026-01-01"},
        {"provider": "alpha", "flavor": "h1", "gpu_model": "NVIDIA H100 80GB", "gpu_count": 1, "gpu_memory_gib": 80, "vcpus": 1, "ram_gib": 1,
         "eur_per_hour": 2.0, "regions": ["R1"], "source": "s", "as_of": "2026-01-01"},
        {"provider": "alpha", "flavor": "l4", "gpu_model": "NVIDIA L4", "gpu_count": 1, "gpu_memory_gib": 24, "vcpus": 1, "ram_gib": 1,
         "eur_per_hour": 0.5, "regions": None, "source": "s", "as_of": "2026-01-01"},
        {"provider": "beta", "flavor": "pcie8", "gpu_model": "NVIDIA H100 PCIe", "gpu_count": 8, "gpu_memory_gib": 80, "vcpus": 1, "ram_gib": 1,
         "eur_per_hour": 16.0, "regions": ["b-2"], "source": "s", "as_of": "2026-02-01"},
        {"provider": "beta", "flavor": "pcie16", "gpu_model": "NVIDIA H100 PCIe", "gpu_count": 16, "gpu_memory_gib": 80, "vcpus": 1,
         "ram_gib": 1, "eur_per_hour": None, "regions": ["b-1"], "source": "s", "as_of": "2026-02-01"},
        {"provider": "beta", "flavor": "l40s", "gpu_model": "NVIDIA L40S", "gpu_count": 1, "gpu_memory_gib": 48, "vcpus": 1, "ram_gib": 1,
         "eur_per_hour": 1.0, "regions": ["b-1"], "source": "s", "as_of": "2026-02-01"},
        {"provider": "beta", "flavor": "cpu", "gpu_model": None, "gpu_count": 0, "gpu_memory_gib": None, "vcpus": 4, "ram_gib": 16,
         "eur_per_hour": 0.1, "regions": None, "source": "s", "as_of": None},
    ],
    "providers": {
        "alpha": {"title": "Alpha", "company": "Alpha SA", "country": "FR", "parent": None, "secnumcloud": "qualified",
                  "secnumcloud_note": "test", "source": "s", "as_of": "2026-01-01"},
        "beta": {"title": "Beta", "company": "Beta SAS", "country": "FR", "parent": "Gamma group", "secnumcloud": "not_qualified",
                 "secnumcloud_note": "test", "source": "s", "as_of": None},
    },
}


@pytest.fixture
def small():
    return catalog.Catalog(copy.deepcopy(SMALL))


def _flavors(matches):
    return [m.offer.flavor for m in matches]


def test_compare_ranks_by_total_and_puts_unknown_prices_last(small):
    matches = compare.compare(compare.Need(gpu_model="H100", gpus_per_node=8, nodes=2, hours=10), small)
    # pcie8: 16 x 2 x 10 = 320; sxm8: 20 x 2 x 10 = 400; pcie16: unknown, last; h1 has 1 GPU per node
    assert _flavors(matches) == ["pcie8", "sxm8", "pcie16"]
    assert [m.total_eur for m in matches] == [pytest.approx(320.0), pytest.approx(400.0), None]
    assert matches[1].facts.jurisdiction == "FR" and matches[0].facts.jurisdiction == "FR (Gamma group)"
    row = matches[2].to_dict()
    assert row["total_eur"] is None and row["price_as_of"] is None and row["secnumcloud"] == "not_qualified"


def test_an_offer_qualifies_with_at_least_the_gpus_per_node(small):
    # 1 GPU per node: every H100 offer; cheapest total first: h1 2, pcie8 16, sxm8 20, then pcie16
    assert _flavors(compare.compare(compare.Need(gpu_model="h100"), small)) == ["h1", "pcie8", "sxm8", "pcie16"]
    assert _flavors(compare.compare(compare.Need(gpu_model="H100", gpus_per_node=9), small)) == ["pcie16"]


def test_gpu_model_matches_whole_words(small):
    assert _flavors(compare.compare(compare.Need(gpu_model="L4"), small)) == ["l4"], "L4 is not L40S"
    assert _flavors(compare.compare(compare.Need(gpu_model="nvidia l40s"), small)) == ["l40s"]
    assert _flavors(compare.compare(compare.Need(gpu_model="SXM"), small)) == ["sxm8"]
    assert _flavors(compare.compare(compare.Need(gpu_model="h100-pcie", gpus_per_node=8), small)) == ["pcie8", "pcie16"]
    assert compare.model_matches("H100", "h100-80gb") and compare.model_matches("H100", "h100")
    assert not compare.model_matches("H10", "h100-80gb") and not compare.model_matches("L4", "l40s")


def test_compare_filters_by_memory_provider_and_region(small):
    # >= 48 GiB: l40s (1), h1 (2), then 8-GPU nodes
    assert _flavors(compare.compare(compare.Need(min_gpu_memory_gib=48), small)) == ["l40s", "h1", "pcie8", "sxm8", "pcie16"]
    assert _flavors(compare.compare(compare.Need(gpu_model="H100", provider="alpha"), small)) == ["h1", "sxm8"]
    # a zone gives what is sold in it; a region what is sold in it or its zones; regions: null is sold everywhere
    assert _flavors(compare.compare(compare.Need(gpu_model="H100", region="b-2"), small)) == ["pcie8"]
    assert _flavors(compare.compare(compare.Need(gpu_model="H100", region="b"), small)) == ["pcie8", "pcie16"]
    assert _flavors(compare.compare(compare.Need(gpu_model="L4", region="R1"), small)) == ["l4"]


@pytest.mark.parametrize(
    "need, field, words",
    [
        (compare.Need(), "gpu_model", "minimum GPU memory"),
        (compare.Need(gpu_model="X999"), "gpu_model", "allowed: h100-80gb, h100-pcie, h100-sxm, l4, l40s"),
        (compare.Need(gpu_model="H100", nodes=0), "nodes", ">= 1"),
        (compare.Need(gpu_model="H100", gpus_per_node=-1), "gpus_per_node", ">= 1"),
        (compare.Need(gpu_model="H100", hours=0), "hours", "above 0"),
        (compare.Need(min_gpu_memory_gib=-4), "min_gpu_memory_gib", "above 0"),
        (compare.Need(gpu_model="H100", provider="gamma"), "provider", "allowed: alpha, beta"),
        (compare.Need(gpu_model="H100", region="R9"), "region", "allowed: R1, b, b-1, b-2"),
    ],
)
def test_a_need_that_cannot_be_met_as_asked_names_its_field(small, need, field, words):
    with pytest.raises(compare.NeedError) as err:
        compare.compare(need, small)
    assert err.value.field == field and words in str(err.value)


def test_compare_on_the_real_catalog_ranks_the_h100_sxm_node():
    [match] = compare.compare(compare.Need(gpu_model="H100", gpus_per_node=8, nodes=2, hours=720))
    # 25.3308 EUR/h x 2 nodes x 720 h = 36476.352
    assert (match.offer.provider, match.offer.flavor) == ("scaleway", "H100-SXM-8-80G")
    assert match.total_eur == pytest.approx(36476.352)


# -- the `cost compare` command -----------------------------------------------------------------

H100_8 = ["cost", "compare", "--gpu-model", "H100", "--gpus-per-node", "8", "--nodes", "2", "--hours", "720"]


def test_cli_cost_compare_text(capsys):
    assert cli.main(H100_8) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "H100-SXM-8-80G" in line)
    for cell in ("scaleway", "NVIDIA H100 SXM", "fr-par-2", "25.3308", "36,476.35", "2026-10-01", "FR (Iliad group)", "not qualified"):
        assert cell in row, cell
    assert "h100-380" not in out, "1-GPU nodes do not meet an 8-GPU need"
    assert "at least 8 GPUs per node, 2 nodes, 720 h" in out


def test_cli_cost_compare_lists_unknown_prices_as_unknown_after_the_priced(capsys):
    assert cli.main(["cost", "compare", "--gpu-model", "H100"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("ovh ", "scaleway ", "outscale "))]
    unknown = [i for i, line in enumerate(lines) if " unknown " in line]
    assert unknown and min(unknown) > max(i for i in range(len(lines)) if i not in unknown)
    assert lines[0].split()[:2] == ["ovh", "h100-380"]  # 2.80 x 730 = 2,044.00, the cheapest
    assert "2,044.00" in lines[0]
    assert any(line.startswith("outscale") and "unverified" in line for line in lines)


def test_cli_cost_compare_json(capsys):
    assert cli.main([*H100_8[:2], "--gpu-model", "H100", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    offers = data["offers"]
    priced = [o for o in offers if o["total_eur"] is not None]
    assert [o["rank"] for o in priced] == list(range(1, len(priced) + 1))
    assert [o["total_eur"] for o in priced] == sorted(o["total_eur"] for o in priced)
    assert offers[: len(priced)] == priced, "unknown prices after every priced offer"
    assert all(o["rank"] is None and o["eur_per_hour_per_node"] is None for o in offers[len(priced):])
    assert data["need"]["gpus_per_node_at_least"] == 1 and data["need"]["hours"] == 730

    assert cli.main([*H100_8, "--json"]) == 0
    [offer] = json.loads(capsys.readouterr().out)["offers"]
    assert offer["flavor"] == "H100-SXM-8-80G" and offer["total_eur"] == 36476.35 and offer["rank"] == 1
    assert offer["price_as_of"] == "2026-10-01" and offer["jurisdiction"] == "FR (Iliad group)"


def test_cli_cost_compare_priced_only(capsys):
    assert cli.main(["cost", "compare", "--gpu-model", "H100", "--priced-only", "--json"]) == 0
    offers = json.loads(capsys.readouterr().out)["offers"]
    assert offers and all(o["total_eur"] is not None for o in offers)


@pytest.mark.parametrize(
    "flags, words",
    [
        ([], "--gpu-model MODEL or --min-gpu-memory GIB"),
        (["--gpu-model", "X999"], "--gpu-model 'X999' matches no GPU model of the catalog; allowed: a10,"),
        (["--gpu-model", "H100", "--nodes", "-1"], "--nodes must be a whole number >= 1 (given: -1)"),
        (["--gpu-model", "H100", "--gpus-per-node", "0"], "--gpus-per-node must be a whole number >= 1"),
        (["--gpu-model", "H100", "--hours", "-5"], "--hours must be a number of hours above 0"),
        (["--gpu-model", "H100", "--hours", "nan"], "--hours must be a number of hours above 0"),
        (["--min-gpu-memory", "0"], "--min-gpu-memory must be a number of GiB above 0"),
        (["--gpu-model", "H100", "--provider", "aws"], "--provider 'aws' is not a provider of the catalog; allowed: outscale, ovh, scaleway"),
        (["--gpu-model", "H100", "--provider", "ovh", "--region", "fr-par"], "--region 'fr-par' is not a region or zone of ovh; allowed:"),
    ],
)
def test_cli_cost_compare_bad_input_exits_2(capsys, flags, words):
    assert cli.main(["cost", "compare", *flags]) == cli.EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert words in captured.err
    assert captured.out == "" and "Traceback" not in captured.err


def test_cli_cost_compare_non_numbers_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["cost", "compare", "--gpu-model", "H100", "--nodes", "two"])
    assert exit_.value.code == cli.EXIT_BAD_INPUT
    assert "argument --nodes: invalid int value: 'two'" in capsys.readouterr().err


# -- the plan's cost section --------------------------------------------------------------------


def test_plan_exports_the_costs(default_plan):
    data = default_plan.outputs["costs"]
    assert data["totals"]["max"]["eur_per_month"] == 11242
    assert data["totals"]["desired"]["eur_per_month"] == 5110
    assert data["budget"] == {
        "eur_per_month": 20000, "enforced": False, "state": "incomplete", "max_eur_per_month": 11242,
        "message": data["budget"]["message"],
    }


def test_plan_json_has_top_level_costs(default_plan):
    data = json.loads(report.dumps_json(default_plan))
    assert data["format"] == report.FORMAT_VERSION == 3
    assert data["costs"] == default_plan.outputs["costs"]
    system = next(p for p in data["costs"]["pools"] if p["name"] == "system")
    assert system["eur_per_month"] == {"min": None, "desired": None, "max": None}


def test_plan_text_has_a_cost_section(default_plan):
    text = report.to_text(default_plan)
    section = text[text.index("Costs (EUR"): text.index("Outputs:")]
    h100 = next(line for line in section.splitlines() if line.strip().startswith("h100"))
    assert h100.split() == ["h100", "h100-380", "0/2/4", "2.80", "ovh_catalog", "2025-01-27", "0.00", "4,088.00", "8,176.00"]
    system = next(line for line in section.splitlines() if line.strip().startswith("system"))
    assert system.split()[-3:] == ["unknown", "unknown", "unknown"]
    total = next(line for line in section.splitlines() if line.strip().startswith("total"))
    assert "at least 1,022.00" in total and "at least 5,110.00" in total and "at least 11,242.00" in total
    assert "budget: incomplete:" in section and "cannot be checked fully" in section
    assert "unknown (never counted as 0" in section and "system, object storage" in section


def test_plan_markdown_has_a_cost_table(default_plan):
    md = report.to_markdown(default_plan)
    assert "## Costs" in md
    assert "| h100 | h100-380 | 0/2/4 | 2.80 | ovh_catalog 2025-01-27 | 0.00 | 4,088.00 | 8,176.00 |" in md
    assert "| l40s | l40s-90 | 1/1/3 | 1.40 | ovh_catalog 2025-01-27 | 1,022.00 | 1,022.00 | 3,066.00 |" in md
    assert "| system | b3-16 | 2/3/3 | unknown | ovh_flavor_naming | unknown | unknown | unknown |" in md
    assert "| total |  |  |  |  | at least 1,022.00 | at least 5,110.00 | at least 11,242.00 |" in md
    assert "**Budget (incomplete):**" in md
    assert md.index("## Costs") < md.index("## Outputs")


def test_a_recording_without_costs_has_no_cost_section():
    rec = Recording(project="p", stack="s", resources=[], outputs={"provider": "ovh"})
    assert "costs" not in report.to_json(rec)
    assert "Costs (" not in report.to_text(rec) and "## Costs" not in report.to_markdown(rec)


def test_the_program_warns_when_the_budget_cannot_be_checked_fully(project, caplog):
    with caplog.at_level(logging.WARNING):
        record(project, "ovh-gra11")
    assert "budget: max-node cost at least 11,242.00 EUR/month" in caplog.text
    assert "cannot be checked fully" in caplog.text


# -- providers' sovereignty facts ---------------------------------------------------------------


def test_every_provider_of_the_catalog_has_sovereignty_facts():
    cat = catalog.load()
    for provider in {o.provider for o in cat.offers()}:
        facts = cat.provider_facts(provider)
        assert facts is not None, provider
        assert facts.source in cat.sources and facts.secnumcloud in catalog.SECNUMCLOUD_STATUSES
        assert facts.country == "FR"
    assert cat.provider_facts("existing") is None


def test_secnumcloud_status_as_the_sources_say():
    cat = catalog.load()
    ovh, scw, osc = (cat.provider_facts(p) for p in ("ovh", "scaleway", "outscale"))
    assert ovh.secnumcloud == "not_qualified" and "Bare Metal PoD" in ovh.secnumcloud_note
    assert scw.secnumcloud == "not_qualified" and scw.parent == "Iliad group" and "2025" in scw.secnumcloud_note
    assert osc.secnumcloud == "unverified" and "Dassault" in osc.parent
    assert ovh.as_of == "2026-03-25" and scw.as_of == "2026-05-11" and osc.as_of is None


def test_catalog_refuses_offers_of_a_provider_without_facts():
    data = copy.deepcopy(SMALL)
    del data["providers"]["beta"]
    with pytest.raises(ValueError, match="offers of beta but no entry under 'providers'"):
        catalog.Catalog(data)
    data = copy.deepcopy(SMALL)
    data["providers"]["alpha"]["secnumcloud"] = "probably"
    with pytest.raises(ValueError, match="allowed: qualified, not_qualified, unverified"):
        catalog.Catalog(data)


def test_cli_cost_compare_says_which_flavours_are_not_known_to_work_as_managed_pools(capsys):
    assert cli.main(["cost", "compare", "--gpu-model", "A100", "--provider", "ovh", "--json"]) == 0
    by_flavor = {o["flavor"]: o for o in json.loads(capsys.readouterr().out)["offers"]}
    assert by_flavor["a100-180"]["managed_pool"] == "supported"
    assert cli.main(["cost", "compare", "--gpu-model", "H100", "--provider", "ovh"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("ovh") and "h100-380" in line)
    assert row.rstrip().endswith("unverified*")
    assert "* sold as an instance; no source records it working as a managed Kubernetes node pool" in out
