"""``infratech preview|up|destroy|outputs`` and ``infratech backend``: the Automation API replaced
by a recorder (no Pulumi CLI here), the state bucket made on a local S3 stand-in (moto's server)."""

from __future__ import annotations

import socket
import types

import pytest

from infratech import cli
from infratech.cli import deploy
from infratech.cli.backend import ensure_bucket
from infratech.state import describe, s3_url


class CommandError(Exception):
    pass


class AutomationRecorder:
    """Test double of ``pulumi.automation`` (the Pulumi CLI cannot be installed here): records the
    calls, knows which stacks exist in the backend, and refuses to select a missing one as the CLI
    does ("no stack named … found")."""

    errors = types.SimpleNamespace(CommandError=CommandError)

    def __init__(self, existing=()):
        self.calls: list[tuple] = []
        self.existing = set(existing)

    def LocalWorkspaceOptions(self, **kwargs):  # noqa: N802 - the Automation API's name
        return kwargs

    def create_or_select_stack(self, stack_name, work_dir, opts):
        self.calls.append(("create_or_select_stack", stack_name, opts))
        self.existing.add(stack_name)
        return _Stack(self, stack_name)

    def select_stack(self, stack_name, work_dir, opts):
        self.calls.append(("select_stack", stack_name, opts))
        if stack_name not in self.existing:
            raise CommandError(f"error: no stack named '{stack_name}' found")
        return _Stack(self, stack_name)


class _Stack:
    def __init__(self, api, name):
        self.api, self.name = api, name

    def up(self, on_output):
        self.api.calls.append(("up", self.name))
        out = types.SimpleNamespace(value="GRA11", secret=False)
        return types.SimpleNamespace(outputs={"region": out, "kubeconfig": types.SimpleNamespace(value="k", secret=True)})

    def preview(self, on_output):
        self.api.calls.append(("preview", self.name))


@pytest.fixture
def pulumi_on_path(monkeypatch):
    monkeypatch.setattr(deploy.shutil, "which", lambda name: "/usr/local/bin/pulumi")


def test_the_first_up_creates_the_stack_in_the_backend_named(project, pulumi_on_path, monkeypatch, tmp_path):
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    api = AutomationRecorder()
    outputs = deploy.run(project, "ovh-gra11", "up", echo=lambda _: None, api=api)
    assert outputs == {"kubeconfig": "[secret]", "region": "GRA11"}
    kind, name, opts = api.calls[0]
    assert (kind, name) == ("create_or_select_stack", "ovh-gra11")
    assert opts["env_vars"] == {"PULUMI_BACKEND_URL": f"file://{tmp_path}"}
    deploy.run(project, "ovh-gra11", "preview", echo=lambda _: None, api=api)  # now it exists: selected
    assert api.calls[-2][0] == "select_stack" and api.calls[-1] == ("preview", "ovh-gra11")


def test_preview_of_a_stack_not_created_yet_says_how_to_create_it(project, pulumi_on_path, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    with pytest.raises(deploy.DeployError, match=r"stack 'ovh-gra11' does not exist in file://.* yet: `infratech up ovh-gra11` creates it"):
        deploy.run(project, "ovh-gra11", "preview", echo=lambda _: None, api=AutomationRecorder())


def test_without_a_named_backend_up_uses_the_stacks_own_bucket(project, pulumi_on_path, monkeypatch):
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    with pytest.raises(deploy.DeployError, match="llm-gra11-pulumi-state needs S3 keys of ovh: set AWS_ACCESS_KEY_ID"):
        deploy.run(project, "ovh-gra11", "up", echo=lambda _: None, api=AutomationRecorder())


@pytest.fixture
def s3_server(monkeypatch):
    """moto's S3 server on 127.0.0.1: a stand-in for the provider's S3 endpoint (no cloud here)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    yield f"127.0.0.1:{port}"
    server.stop()


def test_the_state_bucket_is_created_once_versioned_and_encrypted(s3_server):
    import boto3

    backend = describe(s3_url("llm-test-pulumi-state", s3_server, "fr-par"))
    assert ensure_bucket(backend, echo=lambda _: None) is True
    assert ensure_bucket(backend, echo=lambda _: None) is False, "a rerun finds it"
    s3 = boto3.client("s3", endpoint_url=f"http://{s3_server}", region_name="fr-par")
    assert s3.get_bucket_versioning(Bucket="llm-test-pulumi-state")["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket="llm-test-pulumi-state")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_backend_command_prints_the_bucket_and_where_it_is(capsys):
    assert cli.main(["backend", "scaleway-fr-par-2-l4"]) == 0
    out = capsys.readouterr().out
    assert "backend: s3://llm-par2-serve-pulumi-state?endpoint=s3.fr-par.scw.cloud&region=fr-par&s3ForcePathStyle=true" in out
    assert "where: scaleway, fr-par, FR" in out and "secrets: passphrase" in out
