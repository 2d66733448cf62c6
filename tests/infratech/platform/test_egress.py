"""Team pods reach the object store only; metadata and carrier-grade ranges never (``netpol_eval``)."""

from __future__ import annotations

import pytest
from netpol_eval import reachable

from infratech.cli.plan import record

STACKS = ("ovh-gra11", "scaleway-fr-par-2-h100", "existing-onprem")


@pytest.fixture(scope="module")
def plans(project):
    return {s: record(project, s) for s in STACKS}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.254"])
def test_metadata_and_carrier_grade_ranges_are_never_reachable(plans, stack, address):
    for port in (443, 80, 53):
        assert not reachable(plans[stack], "pretraining", address, port), f"{stack}: {address}:{port}"


def test_managed_providers_keep_private_ranges_out(plans):
    for stack in ("ovh-gra11", "scaleway-fr-par-2-h100"):
        assert not reachable(plans[stack], "pretraining", "10.1.2.3", 443)
        assert not reachable(plans[stack], "pretraining", "192.168.1.1", 443)


def test_declared_store_addresses_are_the_only_https_destinations(variant):
    rec = variant("ovh-gra11", lambda c: c.setdefault("infratech:object_storage", {}).update(egress_cidrs=["193.70.0.0/24"]))
    assert reachable(rec, "pretraining", "193.70.0.10", 443)
    assert not reachable(rec, "pretraining", "193.70.1.10", 443), "outside the store's range"
    assert not reachable(rec, "pretraining", "8.8.8.8", 443), "no other server"
    assert not reachable(rec, "pretraining", "193.70.0.10", 22), "the store's port only"


def test_an_endpoint_given_by_address_is_the_only_destination(variant):
    def edit(c):
        c["infratech:existing"]["object_store"]["endpoint"] = "https://10.20.30.40:9000"

    rec = variant("existing-onprem", edit)
    assert reachable(rec, "pretraining", "10.20.30.40", 9000)
    assert not reachable(rec, "pretraining", "10.20.30.41", 9000)
    assert not reachable(rec, "pretraining", "1.1.1.1", 9000)


@pytest.mark.parametrize("cidr", ["169.254.169.0/24", "100.64.1.0/24", "0.0.0.0/0", "10.0.0.0/8"])
def test_egress_cidrs_cannot_open_what_must_stay_closed(project, cidr):
    from infratech.config.storage import ObjectStorage

    with pytest.raises(ValueError):
        ObjectStorage(egress_cidrs=(cidr,))
