"""Where each stack's Pulumi state goes: a bucket of its own provider and region, read back by
``describe`` into provider, region and country for the state-in-region rule."""

from __future__ import annotations

import pytest

from infratech import config
from infratech.cli.stacks import read_stack_config
from infratech.state import describe, s3_url


def _cfg(project, stack, **changes) -> config.StackConfig:
    raw, _ = read_stack_config(project, stack)
    data = {**config.raw_from_config(raw), **changes}
    return config.parse(data, stack, None)


@pytest.mark.parametrize("stack,url,country", [
    ("ovh-gra11", "s3://llm-gra11-pulumi-state?endpoint=s3.gra.io.cloud.ovh.net&region=gra&s3ForcePathStyle=true", "FR"),
    ("scaleway-fr-par-2-h100", "s3://llm-par2-train-pulumi-state?endpoint=s3.fr-par.scw.cloud&region=fr-par&s3ForcePathStyle=true", "FR"),
    ("existing-onprem", "s3://llm-onprem-pulumi-state?endpoint=s3.dc1.example.org&region=paris-dc1&s3ForcePathStyle=true", "FR"),
])
def test_the_default_backend_is_a_bucket_of_the_stacks_own_provider_and_region(project, stack, url, country):
    backend = _cfg(project, stack).state_backend()
    assert (backend.url, backend.kind, backend.country, backend.encryption) == (url, "s3", country, "passphrase")


def test_the_backend_follows_the_object_storage_region(project):
    backend = _cfg(project, "ovh-gra11", object_storage={"region": "SBG"}).state_backend()
    assert backend.endpoint == "s3.sbg.io.cloud.ovh.net" and backend.region == "sbg" and backend.country == "FR"


def test_a_named_backend_is_read_back_where_it_is(project):
    de = _cfg(project, "ovh-gra11", state={"backend": s3_url("s", "https://s3.de.io.cloud.ovh.net", "de")}).state_backend()
    assert (de.provider, de.region, de.country) == ("ovh", "de", "DE")
    assert describe("https://api.pulumi.com").kind == "hosted" and describe("https://api.pulumi.com").country == "US"
    assert describe("s3://bucket?region=eu-west-3").provider == "aws"
    assert describe("file:///var/lib/pulumi").kind == "file"


@pytest.mark.parametrize("state,words", [
    ({"backend": "ftp://x"}, "state.backend: must be a Pulumi backend URL"),
    ({"secrets_provider": "vault"}, "state.secrets_provider: must be passphrase or <provider>://<key>"),
    ({"secrets_provider": "awskms"}, "state.secrets_provider: must be passphrase or <provider>://<key>"),
])
def test_bad_state_settings_are_refused_by_name(project, state, words):
    with pytest.raises(config.StackConfigError) as info:
        _cfg(project, "ovh-gra11", state=state)
    assert words in info.value.render()
