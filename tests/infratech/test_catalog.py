"""The packaged catalog: facts only, consistent, and the same as the researched reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infratech import catalog

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "gpu-catalog.yaml"
PROVIDER_NAMES = {"ovhcloud": "ovh", "scaleway": "scaleway", "outscale": "outscale"}
FACTS = ("gpu_model", "gpu_count", "gpu_memory_gib", "vcpus", "ram_gib", "eur_per_hour")


def test_gpu_model_ids_are_label_safe():
    assert catalog.gpu_model_id("NVIDIA H100 80GB") == "h100-80gb"
    assert catalog.gpu_model_id("NVIDIA H100 SXM") == "h100-sxm"
    assert catalog.gpu_model_id("NVIDIA L40S") == "l40s"
    for model in catalog.load().gpu_models():
        assert model.replace("-", "").isalnum() and len(model) <= 63


def test_every_offer_has_a_source_and_known_regions():
    cat = catalog.load()
    assert len(cat.offers()) >= 45
    for offer in cat.offers():
        assert offer.source in cat.sources, offer
        for region in offer.regions or ():
            assert cat.location(offer.provider, region) is not None, f"{offer.flavor}: unknown region or zone {region}"


def test_unknown_prices_stay_unknown():
    cat = catalog.load()
    assert cat.offer("scaleway", "H100-SXM-2-80G").eur_per_hour is None
    assert cat.offer("scaleway", "H100-SXM-2-80G").eur_per_month is None
    assert cat.offer("ovh", "b3-16").eur_per_hour is None
    assert cat.offer("ovh", "h100-380").eur_per_month == pytest.approx(2.80 * 730)


def test_gpu_flavours_sold_only_where_the_sources_say():
    cat = catalog.load()
    assert "h100-380" in cat.flavors_in("ovh", "GRA11")
    assert "h100-380" not in cat.flavors_in("ovh", "GRA9")
    assert "b3-16" in cat.flavors_in("ovh", "GRA9"), "general-purpose flavours are not region-bound"
    assert cat.flavors_in("scaleway", "fr-par-2", gpu_only=True)[0] == "B300-SXM-8-288G"
    assert "RENDER-S" not in cat.flavors_in("scaleway", "fr-par-2"), "Scaleway sells per zone"
    assert {"RENDER-S", "H100-SXM-8-80G"} <= set(cat.flavors_in("scaleway", "fr-par")), "a region sells what its zones sell"
    assert cat.location("scaleway", "fr-par-2").name == "fr-par"


@pytest.mark.skipif(not REFERENCE.is_file(), reason="shared/reference is not beside this checkout")
def test_gpu_offers_match_the_reference_catalog():
    ref = yaml.safe_load(REFERENCE.read_text())["records"]
    cat = catalog.load()
    checked = 0
    for rec in ref:
        provider = PROVIDER_NAMES.get(rec["provider"])
        if provider is None:
            continue
        offer = cat.offer(provider, rec["flavor"])
        assert offer is not None, f"{rec['provider']} {rec['flavor']} missing from the package catalog"
        for fact in FACTS:
            assert getattr(offer, fact) == rec[fact], f"{offer.flavor}.{fact}"
        assert list(offer.regions or []) == list(rec["regions"] or []), f"{offer.flavor}.regions"
        checked += 1
    assert checked == len([o for o in cat.offers() if o.is_gpu])


def test_ovh_regions_say_which_mks_plans_they_sell():
    cat = catalog.load()
    assert cat.region("ovh", "GRA11").mks_plans == ("free",), "GRA11 is single-zone: Standard is 3-AZ only"
    assert cat.region("ovh", "EU-WEST-PAR").mks_plans == ("standard",)
    assert all(r.mks_plans for r in cat.regions("ovh").values() if r.kubernetes)


def test_every_ovh_gpu_flavour_says_whether_it_is_known_to_work_as_an_mks_pool():
    cat = catalog.load()
    for offer in cat.offers("ovh"):
        if offer.is_gpu:
            assert offer.managed_pool in catalog.MANAGED_POOL_STATUSES, offer.flavor
            assert offer.managed_pool_source in cat.sources, offer.flavor
    assert cat.offer("ovh", "a100-180").managed_pool == "supported"
    assert cat.offer("ovh", "h100-380").managed_pool == "unverified"


def test_a_managed_pool_status_outside_the_allowed_words_is_refused():
    data = yaml.safe_load((Path(catalog.__file__).parent / "catalog.yaml").read_text())
    data["offers"][0]["managed_pool"] = {"status": "probably", "source": "ovh_mks_a10"}
    with pytest.raises(ValueError, match="managed_pool.status is 'probably'; allowed: supported, unverified"):
        catalog.Catalog(data)
